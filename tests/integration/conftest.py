"""Fixtures for the Passerelle integration tests.

Nothing is built here: the binaries are located (.build/debug, or the
PASSERELLED / PASSERELLECTL environment variables). Each test that needs a
gateway gets a fresh passerelled on a free port with its own spool; at
teardown it is stopped with SIGTERM (SIGKILL after 10 s) and the test fails if
the daemon crashed, ignored SIGTERM or exited non-zero. Its stderr is
attached to the report of any failing test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import datagen  # noqa: E402
import harness  # noqa: E402
from harness import Gateway  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    gateways = getattr(item, "_gateways", [])
    if report.failed and gateways:
        for i, gw in enumerate(gateways):
            report.sections.append((f"passerelled #{i} stderr ({report.when})",
                                    gw.log_tail(20000)))
    if report.failed:
        for hub in getattr(item, "_hubs", []):  # test_upload's Orthanc hubs
            report.sections.append((f"orthanc {hub.workdir.name} log ({report.when})",
                                    hub.log_tail(4000)))


@pytest.fixture(scope="session", autouse=True)
def _binaries_present():
    missing = [str(p) for p in (harness.passerelled_path(), harness.passerellectl_path())
               if not p.exists()]
    if missing:
        pytest.exit("not built: " + ", ".join(missing)
                    + " (build first, or set PASSERELLED / PASSERELLECTL)", returncode=2)


@pytest.fixture
def start_gateway(tmp_path, request):
    """Factory: start_gateway(**config) -> a running Gateway (see harness.GatewayConfig
    for the keys: ae_title, allowed_calling_aets, max_associations, max_pdu_length,
    idle_timeout, min_free, spool, port; tables site, upload, destinations, spool_extra;
    arrays of tables communities, aes, site_directory)."""
    gateways: list[Gateway] = []
    request.node._gateways = gateways

    def start(**config) -> Gateway:
        gw = Gateway(tmp_path / f"gw{len(gateways)}", **config)
        gateways.append(gw)
        return gw.start()

    yield start

    problems = []
    for gw in gateways:
        gw.stop()
        problems += gw.problems
    if problems:
        pytest.fail("gateway problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def gateway(start_gateway) -> Gateway:
    """A passerelled with the default test configuration."""
    return start_gateway()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def ct500(data_dir) -> list[Path]:
    """500 CT 512x512x16 instances of one study/series (generated once)."""
    study = datagen.Study.new(datagen.Patient("CT500", "Martin^Paul", issuer="CHR-ORLEANS"))
    return datagen.make_ct_series(data_dir / "ct500", 500, study)


@pytest.fixture
def one_ct(tmp_path) -> Path:
    """A small CT instance for 'is the gateway still serving?' checks."""
    return datagen.make_ct(tmp_path / "probe.dcm", datagen.Study.new(), rows=64, cols=64)

