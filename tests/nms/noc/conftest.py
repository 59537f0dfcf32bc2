"""The case service's databases with the detector's own schema, as tests/nms/detector."""

from tests.nms.detector.conftest import database  # noqa: F401 - the overriding fixture
