// The workspace's script: live countdowns and canned replies inserted in place.
// Progressive enhancement only: every page works without it.
"use strict";

(() => {
  const span = (seconds) => {
    const minutes = Math.floor(seconds / 60);
    if (minutes < 1) return `${seconds} s`;
    if (minutes < 60) return `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    if (hours < 48) return rest ? `${hours} h ${rest} min` : `${hours} h`;
    const days = Math.floor(hours / 24);
    return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
  };

  // <time datetime="ISO" data-countdown>: "in 12 min", or "overdue 3 min" (red).
  const tick = () => {
    const now = Date.now();
    for (const element of document.querySelectorAll("time[data-countdown]")) {
      const at = Date.parse(element.getAttribute("datetime"));
      if (Number.isNaN(at)) continue;
      const seconds = Math.round((at - now) / 1000);
      element.textContent = seconds <= 0 ? `overdue ${span(-seconds)}` : `in ${span(seconds)}`;
      element.classList.toggle("overdue", seconds <= 0);
    }
  };
  tick();
  window.setInterval(tick, 1000);

  // Canned replies: "Insert" fills the composer without leaving the page.
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("[data-reply-insert]")) return;
    const select = form.querySelector("select[name=reply]");
    const composer = document.querySelector("#composer-body");
    if (!select || !composer || !select.value) return;
    event.preventDefault();
    const response = await fetch(`${form.dataset.replyInsert}/${encodeURIComponent(select.value)}`, {
      credentials: "same-origin",
      headers: { Accept: "text/plain" },
    });
    if (!response.ok) {
      form.submit();
      return;
    }
    const text = await response.text();
    composer.value = composer.value ? `${composer.value}\n\n${text}` : text;
    composer.focus();
  });
})();

// The new case form: choosing a customer lists its NTUs (the form's GET, submitted
// when the field is left).
document.addEventListener("change", (event) => {
  const field = event.target;
  if (!(field instanceof HTMLInputElement) || field.id !== "nc-customer") return;
  const picker = document.querySelector("form[data-reactive-customer]");
  const pick = document.querySelector("#nc-customer-pick");
  if (picker && pick && field.value) {
    pick.value = field.value;
    picker.submit();
  }
});
