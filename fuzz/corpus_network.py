"""DIMSE command sets and Upper Layer PDUs for fuzz/make-corpus.py (split out to keep files
short): made with pynetdicom's DIMSE message and PDU classes."""

import io
import struct

from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

DEFLATED = "1.2.840.10008.1.2.1.99"


def use(**helpers):
    """make-corpus.py hands its helpers over: put, encode, instance, identifiers."""
    globals().update(helpers)

def command_sets():
    """(name, command set bytes, data set bytes or None) from pynetdicom's DIMSE messages."""
    from pynetdicom import dimse_messages as messages, dimse_primitives as primitives

    def make(primitive_class, message_class, **fields):
        primitive = primitive_class()
        for key, value in fields.items():
            setattr(primitive, key, value)
        message = message_class()
        message.primitive_to_message(primitive)
        pdata = list(message.encode_msg(1, 16384))
        command = b"".join(p.presentation_data_value_list[0][1][1:] for p in pdata
                           if p.presentation_data_value_list[0][1][0] & 1)
        data = b"".join(p.presentation_data_value_list[0][1][1:] for p in pdata
                        if not p.presentation_data_value_list[0][1][0] & 1)
        return command, data or None

    ct = instance()
    identifier = identifiers()["study"]
    yield ("echo-rq", *make(primitives.C_ECHO, messages.C_ECHO_RQ, MessageID=1,
                             AffectedSOPClassUID="1.2.840.10008.1.1"))
    yield ("echo-rsp", *make(primitives.C_ECHO, messages.C_ECHO_RSP, MessageIDBeingRespondedTo=1,
                              AffectedSOPClassUID="1.2.840.10008.1.1", Status=0))
    yield ("store-rq", *make(primitives.C_STORE, messages.C_STORE_RQ, MessageID=7,
                              AffectedSOPClassUID=ct.SOPClassUID, AffectedSOPInstanceUID=ct.SOPInstanceUID,
                              Priority=0, MoveOriginatorApplicationEntityTitle="PACS",
                              MoveOriginatorMessageID=3, DataSet=io.BytesIO(encode(ct, ImplicitVRLittleEndian))))
    yield ("store-rsp", *make(primitives.C_STORE, messages.C_STORE_RSP, MessageIDBeingRespondedTo=7,
                               AffectedSOPClassUID=ct.SOPClassUID, AffectedSOPInstanceUID=ct.SOPInstanceUID,
                               Status=0xB000))
    yield ("find-rq", *make(primitives.C_FIND, messages.C_FIND_RQ, MessageID=2,
                             AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.1", Priority=2,
                             Identifier=io.BytesIO(encode(identifier, ImplicitVRLittleEndian))))
    yield ("find-rsp", *make(primitives.C_FIND, messages.C_FIND_RSP, MessageIDBeingRespondedTo=2,
                              AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.1", Status=0xFF00,
                              Identifier=io.BytesIO(encode(identifier, ImplicitVRLittleEndian))))
    yield ("move-rq", *make(primitives.C_MOVE, messages.C_MOVE_RQ, MessageID=3,
                             AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.2", Priority=0, MoveDestination="GATEWAY",
                             Identifier=io.BytesIO(encode(identifier, ImplicitVRLittleEndian))))
    yield ("move-rsp", *make(primitives.C_MOVE, messages.C_MOVE_RSP, MessageIDBeingRespondedTo=3,
                              AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.2", Status=0xFF00,
                              NumberOfRemainingSuboperations=4, NumberOfCompletedSuboperations=1,
                              NumberOfFailedSuboperations=0, NumberOfWarningSuboperations=0))
    yield ("get-rq", *make(primitives.C_GET, messages.C_GET_RQ, MessageID=4,
                            AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.3", Priority=0,
                            Identifier=io.BytesIO(encode(identifier, ImplicitVRLittleEndian))))
    yield ("cancel-rq", *make(primitives.C_CANCEL, messages.C_CANCEL_RQ, MessageIDBeingRespondedTo=2))


def pdvs(command, data, context=0):
    """The dimse harness's PDV layout: [context][control][length][bytes], ≤ 255 bytes each."""
    out = []
    for payload, kind in ((command, 1), (data, 0)):
        if payload is None:
            continue
        pieces = [payload[i:i + 255] for i in range(0, len(payload), 255)] or [b""]
        for n, piece in enumerate(pieces):
            out += [context, kind | (2 if n == len(pieces) - 1 else 0), len(piece)] + list(piece)
    return out


def association_pdus():
    from pynetdicom import pdu, pdu_primitives as p
    from pynetdicom.presentation import build_context

    def user_information():
        items = []
        for cls, attrs in [(p.MaximumLengthNotification, {"maximum_length_received": 16384}),
                           (p.ImplementationClassUIDNotification, {"implementation_class_uid": "1.2.826.0.1.3680043.9.3811.3.0.4"}),
                           (p.ImplementationVersionNameNotification, {"implementation_version_name": "PYNETDICOM_304"}),
                           (p.AsynchronousOperationsWindowNegotiation, {"maximum_number_operations_invoked": 1,
                                                                        "maximum_number_operations_performed": 1})]:
            item = cls()
            for key, value in attrs.items():
                setattr(item, key, value)
            items.append(item)
        role = p.SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2"
        role.scu_role, role.scp_role = True, True
        identity = p.UserIdentityNegotiation()
        identity.user_identity_type = 2
        identity.primary_field = b"radiology"
        identity.secondary_field = b"secret"
        identity.positive_response_requested = True
        return items + [role, identity]

    contexts = []
    for n, (abstract, syntaxes) in enumerate([
            ("1.2.840.10008.1.1", [ImplicitVRLittleEndian]),
            ("1.2.840.10008.5.1.4.1.1.2", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DEFLATED, ExplicitVRBigEndian]),
            ("1.2.840.10008.5.1.4.1.2.2.1", [ImplicitVRLittleEndian])]):
        context = build_context(abstract, syntaxes)
        context.context_id = 2 * n + 1
        contexts.append(context)
    request = p.A_ASSOCIATE()
    request.application_context_name = "1.2.840.10008.3.1.1.1"
    request.calling_ae_title = "MODALITY"
    request.called_ae_title = "PASSERELLE"
    request.presentation_context_definition_list = contexts
    request.user_information = user_information()
    rq = pdu.A_ASSOCIATE_RQ()
    rq.from_primitive(request)
    yield "associate-rq", rq.encode()

    accept = p.A_ASSOCIATE()
    accept.application_context_name = "1.2.840.10008.3.1.1.1"
    accept.calling_ae_title = "MODALITY"
    accept.called_ae_title = "PASSERELLE"
    accept.result = 0
    results = []
    for context, result in zip(contexts, [0, 0, 3]):
        answered = build_context(context.abstract_syntax, [context.transfer_syntax[0]])
        answered.context_id = context.context_id
        answered._as_scu = True
        answered.result = result
        results.append(answered)
    accept.presentation_context_definition_results_list = results
    accept.user_information = user_information()[:3]
    ac = pdu.A_ASSOCIATE_AC()
    ac.from_primitive(accept)
    yield "associate-ac", ac.encode()

    reject = p.A_ASSOCIATE()
    reject.result, reject.result_source, reject.diagnostic = 1, 1, 7
    rj = pdu.A_ASSOCIATE_RJ()
    rj.from_primitive(reject)
    yield "associate-rj", rj.encode()
    yield "release-rq", pdu.A_RELEASE_RQ().encode()
    yield "release-rp", bytes([6, 0, 0, 0, 0, 4, 0, 0, 0, 0])
    yield "abort", bytes([7, 0, 0, 0, 0, 4, 0, 0, 2, 6])


def p_data_tf(context, control, payload):
    item = struct.pack(">IBB", len(payload) + 2, context, control) + payload
    return struct.pack(">BBI", 4, 0, len(item)) + item


def network_seeds():
    commands = list(command_sets())
    for name, command, data in commands:
        put("dimse", f"command-{name}", [0] + list(command))
        put("dimse", f"pdvs-{name}", [1] + pdvs(command, data))
    # Fragments on alternate contexts, and a small command bound.
    name, command, data = commands[2]
    put("dimse", "pdvs-store-small-bound", [3] + pdvs(command, data))

    pdus = dict(association_pdus())
    echo = next(c for n, c, _ in commands if n == "echo-rq")
    echo_rsp = next(c for n, c, _ in commands if n == "echo-rsp")
    store_command, store_data = next((c, d) for n, c, d in commands if n == "store-rq")
    for name, data in pdus.items():
        put("pdu", name, [0] + list(data))
    scu = (pdus["associate-rq"] + p_data_tf(1, 3, echo) + p_data_tf(3, 3, store_command)
           + p_data_tf(3, 0, store_data[:100]) + p_data_tf(3, 2, store_data[100:]) + pdus["release-rq"])
    put("pdu", "scu-session", [0] + list(scu))
    put("pdu", "scu-session-split", [4, 0, 5, 1, 77] + list(scu))
    put("pdu", "scp-session", [2, 9, 200] + list(pdus["associate-ac"] + p_data_tf(1, 3, echo_rsp) + pdus["release-rp"]))
    put("pdu", "p-data-unlimited", [1, 1] + list(p_data_tf(1, 3, echo)))


