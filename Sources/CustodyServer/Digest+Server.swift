import Crypto
import CustodyCore

/// Crypto also declares a `Digest`; in this module the name means Custody's content digest.
typealias Digest = CustodyCore.Digest
