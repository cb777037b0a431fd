/// Acceptor-side presentation context and role negotiation (PS3.8 §9.3.3.2, PS3.7 §D.3.3.4),
/// as a pure function of the proposal and a policy.
public struct PresentationContextNegotiator: Sendable {
    /// What this acceptor supports. The policy is the only place that knows SOP classes.
    public struct Policy: Sendable {
        /// Whether an abstract syntax (SOP class) is supported; `false` → result 3.
        public var acceptsAbstractSyntax: @Sendable (_ abstractSyntax: String) -> Bool
        /// Whether a transfer syntax is acceptable for an abstract syntax; none → result 4.
        public var acceptsTransferSyntax: @Sendable (_ transferSyntax: String, _ abstractSyntax: String) -> Bool
        /// Optional preference order. Empty (the default): the first *proposed* transfer
        /// syntax that is acceptable wins (we store as received). Otherwise the acceptable
        /// proposed syntax ranked first in this list wins; unlisted ones rank after it,
        /// in proposal order.
        public var preferredTransferSyntaxes: [String]
        /// Lets the application reject a supported context anyway (result 1, user rejection).
        public var rejectsContext: @Sendable (_ proposal: PresentationContextProposal) -> Bool
        /// Whether to grant the requestor's proposed roles for a SOP class. Called only for
        /// proposed role items and only with the roles proposed; e.g. grant `scp` for storage
        /// SOP classes so a C-GET requestor can receive its C-STOREs.
        public var acceptsRoles: @Sendable (_ sopClassUID: String, _ proposedSCU: Bool, _ proposedSCP: Bool) -> (scu: Bool, scp: Bool)

        public init(
            acceptsAbstractSyntax: @escaping @Sendable (String) -> Bool,
            acceptsTransferSyntax: @escaping @Sendable (String, String) -> Bool,
            preferredTransferSyntaxes: [String] = [],
            rejectsContext: @escaping @Sendable (PresentationContextProposal) -> Bool = { _ in false },
            acceptsRoles: @escaping @Sendable (String, Bool, Bool) -> (scu: Bool, scp: Bool) = { _, scu, scp in (scu, scp) }
        ) {
            self.acceptsAbstractSyntax = acceptsAbstractSyntax
            self.acceptsTransferSyntax = acceptsTransferSyntax
            self.preferredTransferSyntaxes = preferredTransferSyntaxes
            self.rejectsContext = rejectsContext
            self.acceptsRoles = acceptsRoles
        }

        /// A policy from lists: these abstract syntaxes, with any of these transfer syntaxes
        /// (first proposed acceptable one wins), and the requestor's proposed roles granted.
        public static func accepting(abstractSyntaxes: Set<String>, transferSyntaxes: Set<String>) -> Policy {
            Policy(
                acceptsAbstractSyntax: { abstractSyntaxes.contains($0) },
                acceptsTransferSyntax: { ts, _ in transferSyntaxes.contains(ts) }
            )
        }
    }

    public struct Outcome: Sendable, Hashable {
        /// One result per distinct proposed context ID, in proposal order.
        public var presentationContexts: [PresentationContextResult]
        /// Replies to the proposed role selection items only (none proposed → none sent).
        public var roleSelections: [RoleSelection]

        /// The accepted contexts by ID.
        public var acceptedContexts: [UInt8: String] {
            var result: [UInt8: String] = [:]
            for context in presentationContexts where context.result == .acceptance {
                result[context.id] = context.transferSyntax
            }
            return result
        }
    }

    public var policy: Policy

    public init(policy: Policy) {
        self.policy = policy
    }

    /// Implicit VR Little Endian, written in the transfer syntax sub-item of rejected
    /// contexts that proposed none (the sub-item's value is not significant there).
    static let defaultTransferSyntax = "1.2.840.10008.1.2"

    /// Negotiates an A-ASSOCIATE-RQ's presentation contexts and role selections.
    public func negotiate(_ request: AssociateRQ) -> Outcome {
        negotiate(contexts: request.presentationContexts, roleSelections: request.userInformation.roleSelections)
    }

    /// Negotiates proposed contexts and role selections.
    ///
    /// - An even context ID, or an ID proposed more than once, yields a single result for
    ///   that ID with `noReason` (2): PS3.8 requires odd, unique IDs, and a duplicate would
    ///   make "which one was accepted" ambiguous.
    /// - Role items: one reply per proposed SOP class (first occurrence), each role granted
    ///   only if proposed and allowed by the policy (PS3.7 §D.3.3.4).
    public func negotiate(contexts: [PresentationContextProposal], roleSelections: [RoleSelection]) -> Outcome {
        var counts: [UInt8: Int] = [:]
        for context in contexts { counts[context.id, default: 0] += 1 }

        var results: [PresentationContextResult] = []
        var seen: Set<UInt8> = []
        for proposal in contexts {
            guard seen.insert(proposal.id).inserted else { continue }
            let placeholder = proposal.transferSyntaxes.first ?? Self.defaultTransferSyntax
            if proposal.id % 2 == 0 || counts[proposal.id, default: 0] > 1 {
                results.append(PresentationContextResult(id: proposal.id, result: .noReason, transferSyntax: placeholder))
                continue
            }
            guard policy.acceptsAbstractSyntax(proposal.abstractSyntax) else {
                results.append(
                    PresentationContextResult(id: proposal.id, result: .abstractSyntaxNotSupported, transferSyntax: placeholder)
                )
                continue
            }
            guard let chosen = chooseTransferSyntax(proposal) else {
                results.append(
                    PresentationContextResult(id: proposal.id, result: .transferSyntaxesNotSupported, transferSyntax: placeholder)
                )
                continue
            }
            if policy.rejectsContext(proposal) {
                results.append(PresentationContextResult(id: proposal.id, result: .userRejection, transferSyntax: placeholder))
                continue
            }
            results.append(PresentationContextResult(id: proposal.id, result: .acceptance, transferSyntax: chosen))
        }

        var roles: [RoleSelection] = []
        var seenRoles: Set<String> = []
        for proposed in roleSelections where seenRoles.insert(proposed.sopClassUID).inserted {
            let granted = policy.acceptsRoles(proposed.sopClassUID, proposed.scuRole, proposed.scpRole)
            roles.append(
                RoleSelection(
                    sopClassUID: proposed.sopClassUID,
                    scuRole: proposed.scuRole && granted.scu,
                    scpRole: proposed.scpRole && granted.scp
                )
            )
        }
        return Outcome(presentationContexts: results, roleSelections: roles)
    }

    private func chooseTransferSyntax(_ proposal: PresentationContextProposal) -> String? {
        let acceptable = proposal.transferSyntaxes.filter { policy.acceptsTransferSyntax($0, proposal.abstractSyntax) }
        guard !policy.preferredTransferSyntaxes.isEmpty else { return acceptable.first }
        for preferred in policy.preferredTransferSyntaxes where acceptable.contains(preferred) {
            return preferred
        }
        return acceptable.first
    }
}
