"""The test suites (unit, integration, cluster, site); `tests.helpers` is what they share."""
