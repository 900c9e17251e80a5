/// An enumeration ordered by the order its cases are declared in (verdicts, licence classes, severities: from
/// best to worst, so that the worst of several is their maximum).
public protocol DeclarationOrdered: CaseIterable, Comparable {}

extension DeclarationOrdered {
    /// Orders cases by where they are declared.
    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
