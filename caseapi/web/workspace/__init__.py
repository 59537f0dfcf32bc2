"""The console's `workspace` pages (see ``caseapi.web``)."""
