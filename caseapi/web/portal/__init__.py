"""The console's `portal` pages (see ``caseapi.web``)."""
