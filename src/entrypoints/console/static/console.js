// "/" focuses the page's search box; a [data-copy] button copies its target's text.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.target.closest("input, textarea, select")) return;
  const search = document.querySelector("[data-search]");
  if (search) { event.preventDefault(); search.focus(); search.select(); }
});
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  await navigator.clipboard.writeText(source.value ?? source.textContent);
  button.textContent = "Copied";
});
// A form is submitted once: a double click does not post it twice (the idempotency key covers what gets through).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.submitted) { event.preventDefault(); return; }
  if (form.method === "post") form.dataset.submitted = "1";
});
