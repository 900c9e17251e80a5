package import CustodyCore

/// Which pickle imports are known safe, known dangerous, or neither (formats.md §4, extended with every module the
/// published scanner bypasses used). A deny-list is never complete: "clean" means every import was on the allow-list,
/// and policies may refuse pickle formats outright.
package enum ImportRules {
    /// Exact `module.name` pairs seen in ordinary PyTorch and NumPy checkpoints.
    static let allowed: Set<String> = {
        var names: Set<String> = [
            "collections.OrderedDict",
            "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
            "torch._utils._rebuild_parameter_with_state", "torch._utils._rebuild_tensor",
            "torch.Size", "torch.device",
            "torch.float32", "torch.float16", "torch.bfloat16", "torch.int64", "torch.int32", "torch.bool",
            "numpy.dtype", "numpy.ndarray",
            "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
            "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
            "_codecs.encode",
        ]
        for kind in [
            "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool", "Double",
            "ComplexFloat", "ComplexDouble", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4",
        ] {
            names.insert("torch.\(kind)Storage")
        }
        return names
    }()

    /// Modules denied with everything in them, submodules included.
    static let deniedModules: Set<String> = [
        "os", "posix", "nt", "subprocess", "sys", "runpy", "socket", "ssl", "pty", "shutil", "ctypes", "pickle",
        "_pickle", "marshal", "types", "importlib", "pkgutil", "code", "codeop", "pdb", "bdb", "cProfile", "profile",
        "timeit", "trace", "pydoc", "asyncio", "multiprocessing", "webbrowser", "urllib", "urllib2", "http",
        "httplib", "requests", "aiohttp", "smtplib", "ftplib", "telnetlib", "poplib", "imaplib", "nntplib", "pip",
        "ensurepip", "venv", "distutils", "setuptools", "idlelib", "lib2to3", "uuid", "_osx_support", "_aix_support",
        "test", "doctest", "_pyrepl", "cloudpickle", "dill", "joblib", "commands", "popen2", "platform", "tempfile",
        "glob", "fileinput", "zipimport", "_posixsubprocess", "_thread", "threading", "signal", "resource",
        "numpy.f2py", "numpy.testing", "numpy.distutils", "numpy.load", "numpy.lib.format",
        "torch.hub", "torch.jit", "torch._dynamo", "torch._inductor", "torch.utils.bottleneck",
        "torch.utils.cpp_extension", "torch.utils.data.datapipes", "torch.utils._config_module",
        "torch.fx.experimental.symbolic_shapes", "torch.package", "torch.serialization", "torch.load",
        "torch.utils.collect_env",
    ]

    /// Single names denied inside otherwise unremarkable modules.
    static let deniedNames: Set<String> = [
        "builtins.eval", "builtins.exec", "builtins.compile", "builtins.open", "builtins.getattr", "builtins.setattr",
        "builtins.delattr", "builtins.apply", "builtins.breakpoint", "builtins.__import__", "builtins.input",
        "builtins.execfile", "builtins.file", "builtins.reload", "builtins.globals", "builtins.locals",
        "builtins.vars", "builtins.memoryview",
        "operator.attrgetter", "operator.itemgetter", "operator.methodcaller",
        "functools.partial", "functools.reduce",
        "logging.FileHandler", "logging.config", "_io.FileIO", "io.FileIO", "io.open", "_io.open",
        "pkgutil.resolve_name", "torch.load", "torch.from_file", "numpy.load", "numpy.fromfile",
        "codecs.open", "linecache.getline", "linecache.getlines",
    ]

    /// Python 2 module names a protocol < 3 pickle may use; the unpickler maps them (`fix_imports`).
    static let python2Names: [String: String] = [
        "__builtin__": "builtins", "copy_reg": "copyreg", "httplib": "http.client", "urllib2": "urllib.request",
        "commands": "subprocess", "cPickle": "pickle", "_operator": "operator", "exceptions": "builtins",
        "cStringIO": "io", "StringIO": "io", "Queue": "queue", "thread": "_thread", "SocketServer": "socketserver",
    ]

    /// The verdict for importing `name` from `module`, and why.
    package static func verdict(module: String, name: String) -> (Verdict, String) {
        let canonicalModule = python2Names[module] ?? module
        let qualified = "\(canonicalModule).\(name)"
        if allowed.contains(qualified) || allowed.contains("\(module).\(name)") {
            return (.clean, "on the allow-list of checkpoint globals")
        }
        // `name` may be a dotted path (`Bdb.run`): every prefix of module and attribute path is checked.
        let pieces = canonicalModule.split(separator: ".").map(String.init) + name.split(separator: ".").map(String.init)
        var prefix = ""
        for piece in pieces {
            prefix = prefix.isEmpty ? piece : prefix + "." + piece
            if deniedModules.contains(prefix) || deniedNames.contains(prefix) {
                return (.dangerous, "\(prefix) can run code, spawn processes, touch files or the network")
            }
        }
        // `find_class` resolves a dotted name attribute by attribute, and a module's attributes include the modules it
        // imported: `pathlib` + `os.system` is `os.system`. Every point of the attribute path where a module could be
        // reached is checked too (a private alias such as `_os` as the module it names).
        let attributes = name.split(separator: ".").map(String.init)
        for start in attributes.indices.dropLast() {
            var reached = ""
            for piece in attributes[start...] {
                let plain = reached.isEmpty ? String(piece.drop { $0 == "_" }) : piece
                reached = reached.isEmpty ? plain : reached + "." + piece
                let canonical = python2Names[reached] ?? reached
                if deniedModules.contains(canonical) || deniedNames.contains(canonical) {
                    return (
                        .dangerous,
                        "\(module).\(name) reaches \(canonical) through the attributes of \(module), which can run code, spawn processes, touch files or the network"
                    )
                }
            }
        }
        if module != canonicalModule, deniedModules.contains(module) {
            return (.dangerous, "\(module) can run code, spawn processes, touch files or the network")
        }
        if name.hasPrefix("__") || name.contains(".__") {
            return (.dangerous, "imports a dunder attribute, a way to reach interpreter internals")
        }
        return (.suspicious, "not on the allow-list of checkpoint globals")
    }
}
