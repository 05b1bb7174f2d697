// On every Wagtail admin page: while SMTP mail sending is switched off, show a warning
// in Wagtail's own message area. The banner view answers 403 to users without the
// permission and 204 while sending is on; then nothing is shown.
(function () {
  "use strict";
  const script = document.currentScript;

  function showBanner(banner) {
    const list = document.querySelector('.messages [data-w-messages-target="container"]');
    const template = document.querySelector('.messages template[data-type="warning"]');
    if (!list || !template || document.querySelector("[data-icarus-smtp-banner]")) return;
    const item = template.content.firstElementChild.cloneNode(true);
    item.dataset.icarusSmtpBanner = "";
    const text = item.querySelector("span");
    text.textContent = `${banner.text} `;
    // Wagtail's own message button markup (as messages.button() renders it).
    const buttons = document.createElement("span");
    buttons.className = "buttons";
    const link = document.createElement("a");
    link.className = "button button-small button-secondary";
    link.href = banner.url;
    link.textContent = banner.link_text;
    buttons.appendChild(link);
    text.appendChild(buttons);
    list.appendChild(item);
    const messages = list.closest(".messages");
    if (messages) messages.classList.add("new");
  }

  function check() {
    const url = script && script.dataset.icarusSmtpBannerUrl;
    // Only on pages with the admin sidebar (not on the login page).
    if (!url || !document.querySelector("[data-wagtail-sidebar]")) return;
    // The settings page says it in its own status bar and switch.
    if (document.querySelector("[data-icarus-smtp-status]")) return;
    fetch(url, {
      headers: { "X-Requested-With": "XMLHttpRequest", Accept: "application/json" },
      credentials: "same-origin",
      redirect: "error",
    })
      .then((response) => (response.status === 200 ? response.json() : null))
      .then((banner) => banner && showBanner(banner))
      .catch(() => {});
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", check);
  } else {
    check();
  }
})();
