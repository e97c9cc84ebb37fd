// Live parts of a page ([data-live] elements polling with htmx) ask for news only while the tab is
// in front: a hidden tab's polls are cancelled, and coming back to the tab refreshes them at once.
// A file, not an inline script or an htmx trigger filter: the Content-Security-Policy allows
// scripts from 'self' only, and htmx runs no eval (allowEval false).
(function () {
  "use strict";

  document.addEventListener("htmx:beforeRequest", function (event) {
    var element = event.detail && event.detail.elt;
    if (document.hidden && element && element.hasAttribute("data-live")) {
      event.preventDefault();
    }
  });

  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) {
      return;
    }
    document.querySelectorAll("[data-live]").forEach(function (element) {
      window.htmx.trigger(element, "refresh");
    });
  });
})();
