// The console's shared script: progressive enhancement only (every action works
// without it). Areas add their own files (workspace.js, noc.js, ...).
"use strict";

// Buttons with data-confirm ask before their form is posted.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset ? button.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
