// Progressive enhancement only: every page works without this file.
// It adds a "Copy" button beside each secret shown once. (A payout in
// progress refreshes its page with a meta refresh, no script needed.)
(function () {
  "use strict";
  document.querySelectorAll("[data-copy]").forEach(function (el) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = "Copy";
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(el.textContent.trim()).then(function () {
        button.textContent = "Copied";
      });
    });
    el.after(button);
  });
})();
