"""Test support: settings, factories and checks shared by the suites (no mocks of wfrun)."""
