// sedarchive report: hover a grain to see all its focal layers, click to keep them open.
(function () {
  "use strict";
  var hover = document.getElementById("hoverbox");
  var hoverImg = hover.querySelector("img");
  var box = document.getElementById("lightbox");
  var boxImg = box.querySelector("img");
  var caption = box.querySelector(".caption");

  function place(ev) {
    var x = ev.clientX + 16, y = ev.clientY + 16;
    var w = hover.offsetWidth, h = hover.offsetHeight;
    if (x + w > window.innerWidth) x = Math.max(0, ev.clientX - w - 16);
    if (y + h > window.innerHeight) y = Math.max(0, ev.clientY - h - 16);
    hover.style.left = x + "px";
    hover.style.top = y + "px";
  }
  document.querySelectorAll(".grain img").forEach(function (img) {
    img.addEventListener("mouseenter", function (ev) {
      hoverImg.src = img.dataset.layers;
      hover.hidden = false;
      place(ev);
    });
    img.addEventListener("mousemove", place);
    img.addEventListener("mouseleave", function () { hover.hidden = true; });
    img.addEventListener("click", function () {
      hover.hidden = true;
      boxImg.src = img.dataset.layers;
      caption.textContent = img.dataset.caption + " — focal layers left to right";
      box.hidden = false;
    });
  });
  function close() { box.hidden = true; }
  box.addEventListener("click", function (ev) { if (ev.target === box || ev.target.classList.contains("close")) close(); });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") close(); });
})();
