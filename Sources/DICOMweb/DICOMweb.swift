// DICOMweb: STOW-RS, QIDO-RS and WADO-RS clients (PS3.18) over AsyncHTTPClient.
