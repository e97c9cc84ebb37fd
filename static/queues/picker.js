/*
 * Searchable number pickers: the ARIA combobox pattern (an editable combobox with a list that
 * narrows as you type), as a progressive enhancement. Without this file the page keeps working:
 *  - <select data-picker> (the route page): the select stays the form's field, hidden; the combobox
 *    shows the chosen number and sets the select, then fires its "change" (htmx listens to it);
 *  - <input data-picker list="…"> (a plan's rows): the input itself becomes the combobox, fed by the
 *    page's one shared <datalist>, so hundreds of rows share one list of numbers.
 * Keys: type to narrow; Down/Up move through the choices (Alt+Down opens without moving); Enter
 * chooses; Escape closes the list, or clears the field when it is closed; Tab leaves.
 * No inline script, no eval, text only through textContent (the page's Content-Security-Policy).
 */
(function () {
  "use strict";

  var MAX_SHOWN = 50;
  var lists = {};
  var count = 0;

  function fold(text) { return text.toLocaleLowerCase(); }
  function digits(text) { return text.replace(/\D/g, ""); }

  function item(value, label) {
    return { value: value, label: label, key: fold(label) + "\n" + fold(value) + "\n" + digits(label) };
  }

  function itemsOf(state) {
    if (state.select) {
      if (!state.select._pickerItems) {
        state.select._pickerItems = Array.prototype.filter.call(state.select.options, function (o) { return o.value; })
          .map(function (o) { return item(o.value, o.text); });
      }
      return state.select._pickerItems;
    }
    var id = state.listId;
    if (!lists[id]) {
      var datalist = document.getElementById(id);
      lists[id] = datalist ? Array.prototype.map.call(datalist.options, function (o) {
        return item(o.value, o.label || o.text);
      }) : [];
    }
    return lists[id];
  }

  function matching(state) {
    var terms = fold(state.input.value).split(/\s+/).filter(Boolean);
    var all = itemsOf(state);
    if (state.select && state.input.value === state.shownLabel) { terms = []; }  // the chosen one: show all
    if (!terms.length) { return all; }
    return all.filter(function (candidate) {
      return terms.every(function (term) {
        var number = term.replace(/[+()\-.]/g, "");  // "+44(0)7700-9" finds a phone by its digits
        return candidate.key.indexOf(term) !== -1 || (/^\d{3,}$/.test(number) && candidate.key.indexOf(number) !== -1);
      });
    });
  }

  function build(state) {
    var popup = document.createElement("div");
    popup.className = "picker-popup";
    popup.hidden = true;
    var list = document.createElement("ul");
    list.id = state.id + "-list";
    list.className = "picker-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Matching numbers");
    var status = document.createElement("p");
    status.className = "picker-status";
    status.setAttribute("aria-live", "polite");
    popup.appendChild(list);
    popup.appendChild(status);
    state.input.parentNode.appendChild(popup);
    popup.addEventListener("mousedown", function (event) { event.preventDefault(); });  // keep focus in the box
    list.addEventListener("click", function (event) {
      var option = event.target.closest("[role=option]");
      if (option) { choose(state, Number(option.getAttribute("data-index"))); }
    });
    state.popup = popup;
    state.list = list;
    state.status = status;
    state.input.setAttribute("aria-controls", list.id);
  }

  function open(state) {
    if (!state.popup) { build(state); }
    var found = matching(state);
    var total = found.length;
    state.matches = found.slice(0, MAX_SHOWN);
    state.list.textContent = "";
    state.matches.forEach(function (candidate, index) {
      var option = document.createElement("li");
      option.id = state.id + "-option-" + index;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      option.setAttribute("data-index", String(index));
      option.textContent = candidate.label;
      state.list.appendChild(option);
    });
    state.status.textContent = total === 0 ? "No number matches." : total > MAX_SHOWN
      ? "The first " + MAX_SHOWN + " of " + total + " numbers; type more to narrow."
      : total + (total === 1 ? " number." : " numbers.");
    state.active = -1;
    state.input.removeAttribute("aria-activedescendant");
    state.popup.hidden = false;
    state.input.setAttribute("aria-expanded", "true");
  }

  function close(state) {
    if (state.popup) { state.popup.hidden = true; }
    state.active = -1;
    state.input.setAttribute("aria-expanded", "false");
    state.input.removeAttribute("aria-activedescendant");
  }

  function isOpen(state) { return state.popup && !state.popup.hidden; }

  function move(state, step) {
    if (!state.matches.length) { return; }
    var next = state.active + step;
    if (next < 0) { next = state.matches.length - 1; }
    if (next >= state.matches.length) { next = 0; }
    var previous = state.list.children[state.active];
    if (previous) { previous.setAttribute("aria-selected", "false"); previous.classList.remove("active"); }
    var option = state.list.children[next];
    option.setAttribute("aria-selected", "true");
    option.classList.add("active");
    option.scrollIntoView({ block: "nearest" });
    state.active = next;
    state.input.setAttribute("aria-activedescendant", option.id);
  }

  function choose(state, index) {
    var chosen = state.matches[index];
    if (!chosen) { return; }
    if (state.select) {
      state.select.value = chosen.value;
      state.input.value = state.shownLabel = chosen.label;
      close(state);
      state.select.dispatchEvent(new Event("change", { bubbles: true }));
    } else {
      state.input.value = chosen.value;
      close(state);
      state.input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function clear(state) {
    state.input.value = "";
    if (state.select && state.select.value) {
      state.select.value = "";
      state.shownLabel = "";
      state.select.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function restore(state) {  // a select's box always shows what is chosen, not half-typed text
    if (state.select && state.input.value !== state.shownLabel) { state.input.value = state.shownLabel; }
  }

  function onKey(state, event) {
    switch (event.key) {
      case "ArrowDown":
        event.preventDefault();
        if (!isOpen(state)) { open(state); if (event.altKey) { return; } }
        move(state, 1);
        break;
      case "ArrowUp":
        event.preventDefault();
        if (event.altKey) { close(state); return; }
        if (!isOpen(state)) { open(state); }
        move(state, -1);
        break;
      case "Enter":
        event.preventDefault();  // never submits the form: the main action is a button of its own
        if (isOpen(state) && state.active >= 0) { choose(state, state.active); }
        break;
      case "Escape":
        if (isOpen(state)) { event.preventDefault(); close(state); restore(state); }
        else if (state.input.value) { event.preventDefault(); clear(state); }
        break;
      case "Tab":
        close(state);
        break;
    }
  }

  function enhance(field) {
    if (field.hasAttribute("data-picker-ready")) { return; }
    field.setAttribute("data-picker-ready", "");
    var state = { id: "picker-" + (++count), matches: [], active: -1 };
    if (field.tagName === "SELECT") {
      var input = document.createElement("input");
      input.type = "text";
      input.id = field.id + "-search";
      input.className = "picker-input";
      var label = document.querySelector("label[for='" + field.id + "']");
      if (label) { label.htmlFor = input.id; }
      var chosen = field.options[field.selectedIndex];
      input.value = state.shownLabel = chosen && chosen.value ? chosen.text : "";
      input.placeholder = "Type part of an alias or a phone";
      if (field.required) { input.required = true; field.required = false; }
      field.hidden = true;
      field.insertAdjacentElement("afterend", input);
      state.select = field;
      state.input = input;
    } else {
      state.input = field;
      state.listId = field.getAttribute("list");
      field.setAttribute("data-list", state.listId);
      field.removeAttribute("list");  // the combobox's own list replaces the browser's
    }
    var box = state.input;
    var focused = document.activeElement === box;  // e.g. the autofocus of a row just added
    var wrapper = document.createElement("div");  // the list opens right under its box
    wrapper.className = "picker";
    box.insertAdjacentElement("beforebegin", wrapper);
    wrapper.appendChild(box);
    if (focused) { box.focus(); }
    box.setAttribute("role", "combobox");
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-expanded", "false");
    box.setAttribute("autocomplete", "off");
    box.addEventListener("input", function () { open(state); });
    box.addEventListener("keydown", function (event) { onKey(state, event); });
    box.addEventListener("click", function () { if (isOpen(state)) { close(state); } else { open(state); } });
    box.addEventListener("blur", function () { close(state); restore(state); });
  }

  function enhanceWithin(root) {
    if (!root || !root.querySelectorAll) { return; }
    if (root.matches && root.matches("[data-picker]")) { enhance(root); }
    Array.prototype.forEach.call(root.querySelectorAll("[data-picker]"), enhance);
  }

  document.addEventListener("htmx:load", function (event) { enhanceWithin(event.detail.elt); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { enhanceWithin(document.body); });
  } else {
    enhanceWithin(document.body);
  }
}());
