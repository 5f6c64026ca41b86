// Live updates for the engine monitor: every element with data-live is refreshed from
// that URL (a server-rendered, escaped HTML fragment) about once a second, until the
// fragment says data-ended. No framework, no build step.
(function () {
  "use strict";
  var PERIOD = 1000;

  function busy(el) {
    // Do not replace a form the user is typing in.
    var active = document.activeElement;
    return active && el.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }

  function refresh(el) {
    if (el.querySelector("[data-ended]") || el.hasAttribute("data-ended")) { return; }
    if (document.hidden || busy(el)) { setTimeout(function () { refresh(el); }, PERIOD); return; }
    fetch(el.getAttribute("data-live"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (html) { el.innerHTML = html; })
      .catch(function () { /* keep the last view; try again */ })
      .then(function () { setTimeout(function () { refresh(el); }, PERIOD); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelectorAll("[data-live]");
    for (var i = 0; i < live.length; i++) {
      (function (el) { setTimeout(function () { refresh(el); }, PERIOD); })(live[i]);
    }
    var filters = document.getElementById("filters");
    if (filters) {
      var selects = filters.querySelectorAll("select");
      for (var j = 0; j < selects.length; j++) {
        selects[j].addEventListener("change", function () { filters.submit(); });
      }
    }
  });
})();
