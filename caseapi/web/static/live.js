// Live regions: every element with data-live="<topics>" and data-live-src="<url>"
// is refreshed from its URL (an HTML fragment, same origin, the session's cookie)
// when /events reports a change of one of its topics. Without this script the page
// is still complete, only not live. No inline script anywhere (CSP).
"use strict";

(() => {
  const regions = () => Array.from(document.querySelectorAll("[data-live][data-live-src]"));
  if (regions().length === 0 || typeof window.EventSource !== "function") {
    return;
  }
  const DEBOUNCE_MS = 250;
  const pending = new Set();
  let timer = null;
  const inFlight = new Map();

  const topicsOf = (element) => new Set((element.dataset.live || "").split(/\s+/).filter(Boolean));

  async function refresh(element) {
    const url = element.dataset.liveSrc;
    // One fetch at a time per region; a change during it asks for one more.
    if (inFlight.get(element)) {
      inFlight.set(element, "again");
      return;
    }
    inFlight.set(element, "busy");
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        headers: { "Accept": "text/html", "X-Requested-With": "live" },
        cache: "no-store",
        redirect: "manual",
      });
      if (response.ok) {
        const html = await response.text();
        // Keep the reader's place: a focused element inside is lost on replace.
        element.innerHTML = html;
        element.dispatchEvent(new CustomEvent("live:updated", { bubbles: true }));
      } else if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
        // Signed out meanwhile: a reload shows the login (and comes back here).
        window.location.reload();
      }
    } catch (error) {
      // Network away: the next change or the reconnect refreshes it.
    } finally {
      const again = inFlight.get(element) === "again";
      inFlight.delete(element);
      if (again) {
        refresh(element);
      }
    }
  }

  function refreshMatching(topics) {
    for (const element of regions()) {
      const wanted = topicsOf(element);
      if (topics === null || [...topics].some((topic) => wanted.has(topic))) {
        refresh(element);
      }
    }
  }

  function schedule(topics) {
    topics.forEach((topic) => pending.add(topic));
    if (timer !== null) {
      return;
    }
    timer = window.setTimeout(() => {
      timer = null;
      const topicsNow = new Set(pending);
      pending.clear();
      refreshMatching(topicsNow);
    }, DEBOUNCE_MS);
  }

  let source = null;
  let broken = false;
  let backoff = 1000;

  function connect() {
    source = new EventSource("/events");
    source.addEventListener("open", () => {
      backoff = 1000;
      document.documentElement.dataset.live = "connected";
      if (broken) {
        // Changes may have happened while we were away: refresh everything once.
        broken = false;
        refreshMatching(null);
      }
    });
    source.addEventListener("change", (event) => {
      try {
        const data = JSON.parse(event.data);
        schedule(Array.isArray(data.topics) ? data.topics : []);
      } catch (error) {
        schedule(["cases", "ntus"]);
      }
    });
    source.addEventListener("error", () => {
      broken = true;
      document.documentElement.dataset.live = "reconnecting";
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. a 503 when every stream slot is taken): retry later.
        source.close();
        window.setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 60000);
      }
      // Otherwise EventSource reconnects by itself after the server's retry hint.
    });
  }

  window.addEventListener("pagehide", () => source && source.close());
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      // Back from the back-forward cache: the stream was closed, the regions are old.
      connect();
      refreshMatching(null);
    }
  });
  connect();
})();
