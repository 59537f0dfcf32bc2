"""The console's `noc` pages (see ``caseapi.web``)."""
