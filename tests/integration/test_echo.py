"""Verification and association acceptance (called / calling AE checks)."""

from harness import association_rejection, echoscu, pn_echo

# A-ASSOCIATE-RJ fields (PS3.8 9.3.4)
REJECTED_PERMANENT = 1
SOURCE_SERVICE_USER = 1
REASON_CALLING_AE_NOT_RECOGNIZED = 3
REASON_CALLED_AE_NOT_RECOGNIZED = 7


def test_echoscu_succeeds(gateway):
    res = echoscu(gateway.port, aec=gateway.ae_title)
    assert res.returncode == 0, res.output
    assert "Received Echo Response (Success)" in res.output, res.output


def test_pynetdicom_echo_status_success(gateway):
    assert pn_echo(gateway.port, aec=gateway.ae_title) == 0x0000


def test_wrong_called_ae_rejected_reason_7(gateway):
    rejection = association_rejection(gateway.port, aec="NOT-" + gateway.ae_title[:10])
    assert rejection == (REJECTED_PERMANENT, SOURCE_SERVICE_USER, REASON_CALLED_AE_NOT_RECOGNIZED)


def test_wrong_called_ae_echoscu_reports_rejection(gateway):
    res = echoscu(gateway.port, aec="WRONGAE")
    assert res.returncode != 0, res.output
    assert res.rejection() == ("Result: Rejected Permanent, Source: Service User\n"
                               "Reason: Called AE Title Not Recognized"), res.output


def test_calling_ae_not_in_allow_list_rejected_reason_3(start_gateway):
    gw = start_gateway(allowed_calling_aets=["MODALITY1", "PACS"])
    rejection = association_rejection(gw.port, aet="INTRUDER", aec=gw.ae_title)
    assert rejection == (REJECTED_PERMANENT, SOURCE_SERVICE_USER, REASON_CALLING_AE_NOT_RECOGNIZED)


def test_calling_ae_in_allow_list_accepted(start_gateway):
    gw = start_gateway(allowed_calling_aets=["MODALITY1", "PACS"])
    res = echoscu(gw.port, aet="PACS", aec=gw.ae_title)
    assert res.returncode == 0, res.output
