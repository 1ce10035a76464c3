// Draws every Vega-Lite chart of the page (and of each panel HTMX swaps in) with the vendored vega-embed.
// SVG rendering, so that the charts can be read, tested and saved; the "..." menu exports PNG and SVG.
(function () {
  function draw(root) {
    var box = root.querySelector(".charts");
    var locale = box && box.dataset.locale && box.dataset.locale !== "null" ? JSON.parse(box.dataset.locale) : null;
    root.querySelectorAll(".chart[data-spec-id]").forEach(function (el) {
      var source = document.getElementById(el.dataset.specId);
      if (!source) { return; }
      var options = {renderer: "svg", actions: {export: true, source: false, compiled: false, editor: false}};
      if (locale) { options.formatLocale = locale; }
      if (document.documentElement.lang === "da") {  // the export menu in the page's language
        options.i18n = {SVG_ACTION: "Gem som SVG", PNG_ACTION: "Gem som PNG", CLICK_TO_VIEW_ACTIONS: "Klik for at se handlinger"};
      }
      vegaEmbed(el, JSON.parse(source.textContent), options).then(function () {
        // The export menu's button says what it is (WCAG 4.1.2): a screen reader otherwise hears nothing.
        el.querySelectorAll("details > summary").forEach(function (summary) {
          summary.setAttribute("aria-label", el.dataset.menuLabel || "Download the chart");
          summary.setAttribute("title", el.dataset.menuLabel || "Download the chart");
        });
        el.dataset.drawn = "yes";
      }).catch(function (error) {
        el.textContent = "The chart could not be drawn: " + error;
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  // After settling: htmx first copies the old attributes onto new elements with the same id, then restores.
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.detail.target); });
})();
