/* Brings each pathway diagram's current step into view inside the diagram's own box (which
   scrolls sideways on a phone), on load and when the live updates redraw the pathways. No
   inline script: the page's Content-Security-Policy allows scripts from the site only. */
(function () {
  "use strict";

  function centre(box) {
    var current = box.querySelector(".state.current");
    if (!current || box.scrollWidth <= box.clientWidth) {
      return;
    }
    var boxRect = box.getBoundingClientRect();
    var stepRect = current.getBoundingClientRect();
    var middle = stepRect.left - boxRect.left + box.scrollLeft + stepRect.width / 2;
    box.scrollLeft = Math.max(0, middle - box.clientWidth / 2);
  }

  function centreAll(root) {
    var boxes = (root || document).querySelectorAll(".diagram");
    for (var i = 0; i < boxes.length; i++) {
      centre(boxes[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { centreAll(); });
  } else {
    centreAll();
  }
  document.body.addEventListener("htmx:afterSwap", function () { centreAll(); });
  window.addEventListener("resize", function () { centreAll(); });
})();
