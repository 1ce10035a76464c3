// A care communication's attachment: the chosen file is read in the browser and sent base64-encoded in
// hidden fields of the same form (the form works without this script, as a text-only message).
(function () {
  "use strict";
  const input = document.getElementById("attachment");
  if (!input) return;
  const form = input.form;
  const data = form.querySelector("input[name=attachment_data]");
  const type = form.querySelector("input[name=attachment_type]");
  const status = document.getElementById("attachment-status");
  input.addEventListener("change", function () {
    data.value = "";
    type.value = "";
    const file = input.files && input.files[0];
    if (!file) { status.textContent = ""; return; }
    if (file.size > 10 * 1024 * 1024) {
      status.textContent = input.dataset.tooLarge;
      input.value = "";
      return;
    }
    const reader = new FileReader();
    reader.onload = function () {
      const text = String(reader.result);
      data.value = text.slice(text.indexOf(",") + 1);
      type.value = file.type;
      status.textContent = input.dataset.ready;
    };
    reader.readAsDataURL(file);
  });
})();
