"""The console's `auth` pages (see ``caseapi.web``)."""
