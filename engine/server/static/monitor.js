// Live updates for the engine monitor: every element with data-live is refreshed from
// that URL (a server-rendered, escaped HTML fragment) about once a second, until the
// fragment says data-ended. No framework, no build step.
(function () {
  "use strict";
  var PERIOD = 1000;

  function busy(el) {
    // Do not replace a form the user is typing in or has filled in.
    var active = document.activeElement;
    if (active && el.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) { return true; }
    var fields = el.querySelectorAll("input:not([type=hidden]), textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.tagName === "SELECT") {
        for (var j = 0; j < f.options.length; j++) {
          if (f.options[j].selected !== f.options[j].defaultSelected) { return true; }
        }
      } else if (f.value !== f.defaultValue) { return true; }
    }
    return false;
  }

  function refresh(el) {
    if (el.querySelector("[data-ended]") || el.hasAttribute("data-ended")) { return; }
    if (document.hidden || busy(el)) { setTimeout(function () { refresh(el); }, PERIOD); return; }
    fetch(el.getAttribute("data-live"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (html) { if (!busy(el)) { el.innerHTML = html; } })  // typed into meanwhile: keep it
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
