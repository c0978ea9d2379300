// The rule form without clutter: only the step rows in use (plus 加一步), and each row's 角色 / 指定同事
// picker only when its kind needs one. Without this script every row and picker shows and still works.
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.step"));
  var add = document.getElementById("add-step");
  if (!rows.length || !add) return;

  function used(row) { return row.querySelector(".kind").value !== ""; }
  function pickers(row) {
    var kind = row.querySelector(".kind").value;
    row.querySelector(".role").hidden = kind !== "角色";
    row.querySelector(".person").hidden = kind !== "指定人";
  }
  function refresh() {
    add.hidden = rows.every(function (row) { return !row.hidden; });
  }
  rows.forEach(function (row, i) {
    pickers(row);
    row.querySelector(".kind").addEventListener("change", function () { pickers(row); });
    var remove = row.querySelector(".remove");
    remove.hidden = false;
    remove.addEventListener("click", function () {
      row.querySelectorAll("select").forEach(function (s) { s.selectedIndex = 0; });
      row.querySelector("input[type=checkbox]").checked = false;
      pickers(row);
      row.hidden = rows.filter(function (r) { return !r.hidden; }).length > 1;
      refresh();
    });
    // The first row always shows; later empty rows wait for 加一步.
    row.hidden = i > 0 && !used(row);
  });
  add.addEventListener("click", function () {
    var next = rows.find(function (row) { return row.hidden; });
    if (next) { next.hidden = false; next.querySelector(".kind").focus(); }
    refresh();
  });
  refresh();
})();
