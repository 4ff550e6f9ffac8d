// Disable a form's submit button once it is sent, so a booking isn't made twice.
document.addEventListener("submit", function (event) {
  var button = event.target.querySelector("[data-disable-on-submit]");
  if (button) {
    setTimeout(function () { button.disabled = true; }, 0);
  }
});
