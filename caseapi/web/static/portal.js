// The customer portal: progressive enhancement only (every action works without it).
"use strict";

// A case's public timeline refreshes itself every 30 s from its fragment route
// (customers have no change stream; the fragment is the same public timeline).
(() => {
  const REFRESH_MS = 30000;
  for (const region of document.querySelectorAll("[data-refresh-src]")) {
    const url = region.dataset.refreshSrc;
    window.setInterval(async () => {
      if (document.hidden) {
        return;
      }
      try {
        const response = await fetch(url, { credentials: "same-origin", redirect: "error" });
        if (response.ok) {
          region.innerHTML = await response.text();
        }
      } catch (error) {
        // Offline or signed out: keep what is shown; the next reload says why.
      }
    }, REFRESH_MS);
  }
})();
