"""Test helpers: servers, receivers, browsers and clients the tests share."""
