// 办理 simulator page: pick a platform and a person, chat, tap cards, move the 模拟时钟.
// Plain DOM (textContent only: nothing Banli sends is parsed as HTML). Polls /sim/api/chat each second.
(function () {
  "use strict";

  var PLATFORMS = { wecom: "企业微信", dingtalk: "钉钉" };
  var TITLES = { wecom: "办理 · 企业微信应用", dingtalk: "办理 · 钉钉机器人" };
  var people = {};
  window.SIM.people.forEach(function (p) { people[p.key] = p; });

  var params = new URLSearchParams(location.search);
  var state = {
    platform: pick(params.get("platform") || localStorage.getItem("sim.platform"), PLATFORMS, "wecom"),
    person: pick(params.get("person") || localStorage.getItem("sim.person"), people, window.SIM.people[0].key),
    version: null,
    lastSeq: 0,
    timer: null,
  };

  var $ = function (id) { return document.getElementById(id); };
  var chat = $("chat");

  function pick(value, known, fallback) { return value && known[value] ? value : fallback; }

  // -- talking to the simulator -------------------------------------------------------------------
  function api(path, body) {
    var options = body instanceof FormData ? { method: "POST", body: body }
      : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    return fetch(path, options).then(function (r) { return r.json(); }).then(function (answer) {
      if (answer.error) { alert(answer.error); }
      pollSoon();
      return answer;
    });
  }

  function who(extra) {
    var body = { platform: state.platform, person: state.person };
    Object.keys(extra || {}).forEach(function (k) { body[k] = extra[k]; });
    return body;
  }

  function sendText(text) {
    text = (text || "").trim();
    if (!text) { return; }
    api("/sim/api/send", who({ text: text }));
  }

  function poll() {
    clearTimeout(state.timer);
    var query = new URLSearchParams({ platform: state.platform, person: state.person });
    if (state.version !== null) { query.set("version", state.version); }
    var asked = state.platform + "/" + state.person;
    fetch("/sim/api/chat?" + query).then(function (r) { return r.json(); }).then(function (answer) {
      if (asked !== state.platform + "/" + state.person) { return; }  // switched meanwhile
      showClock(answer.clock);
      showDingTalkMode(answer.dingtalk_cards);
      showUnread(answer.unread || {});
      if (answer.messages) { render(answer.messages); }
      state.version = answer.version;
    }).catch(function () { /* the server restarts: keep polling */ })
      .then(function () { state.timer = setTimeout(poll, 1000); });
  }

  function pollSoon() { clearTimeout(state.timer); state.timer = setTimeout(poll, 150); }

  // -- choosing platform and person ---------------------------------------------------------------
  function choose(platform, person) {
    state.platform = platform;
    state.person = person;
    state.version = null;
    state.lastSeq = 0;
    localStorage.setItem("sim.platform", platform);
    localStorage.setItem("sim.person", person);
    history.replaceState(null, "", "?platform=" + platform + "&person=" + person);
    document.body.className = "platform-" + platform;
    Object.keys(PLATFORMS).forEach(function (p) {
      $("tab-" + p).setAttribute("aria-selected", String(p === platform));
    });
    $("person").value = person;
    $("chat-title").textContent = TITLES[platform];
    $("places").hidden = platform !== "wecom";
    $("dt-mode").hidden = platform !== "dingtalk";
    $("no-location").hidden = platform === "wecom";
    chat.textContent = "";
    poll();
  }

  function showUnread(unread) {
    Array.prototype.forEach.call($("person").options, function (option) {
      var p = people[option.value];
      var n = unread[option.value];
      option.textContent = p.name + " · " + p.title + " · " + p.department + (n ? "（" + n + "条新消息）" : "");
    });
  }

  // 钉钉 with a card template (interactive cards) or without (markdown, buttons as tap-to-send links).
  function showDingTalkMode(cards) {
    if (typeof cards !== "boolean") { return; }
    $("dt-cards").setAttribute("aria-checked", String(cards));
    $("dt-markdown").setAttribute("aria-checked", String(!cards));
  }

  function showClock(clock) {
    if (!clock) { return; }
    $("clock-text").textContent = clock.text;
    $("jump-morning").textContent = clock.morning_label;
  }

  // -- rendering the conversation -----------------------------------------------------------------
  function render(messages) {
    var nearBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 120;
    var last = messages.length ? messages[messages.length - 1].seq : 0;
    var keepTop = chat.scrollTop;
    chat.textContent = "";
    if (!messages.length) {
      chat.appendChild(el("p", "empty", "还没有消息。发「帮助」试试。"));
    }
    var shownTime = null;
    messages.forEach(function (m) {
      if (m.time !== shownTime) { chat.appendChild(el("div", "time", m.time)); shownTime = m.time; }
      chat.appendChild(message(m));
    });
    if (last !== state.lastSeq && (nearBottom || state.lastSeq === 0 || lastIsMine(messages))) {
      chat.scrollTop = chat.scrollHeight;
    } else {
      chat.scrollTop = keepTop;
    }
    state.lastSeq = last;
  }

  function lastIsMine(messages) {
    return messages.length && messages[messages.length - 1].who !== "bot";
  }

  function message(m) {
    if (m.who === "note" || m.kind === "note") {
      var note = el("div", "note");
      note.appendChild(el("span", "", m.text));
      return note;
    }
    var row = el("div", "row " + (m.who === "me" ? "me" : "bot"));
    row.dataset.kind = m.kind;
    var avatar = el("span", "avatar " + (m.who === "me" ? "me" : "bot"),
      m.who === "me" ? people[state.person].name.slice(-2) : "办");
    row.appendChild(avatar);
    row.appendChild(content(m));
    return row;
  }

  function content(m) {
    switch (m.kind) {
      case "wecom_card": return wecomCard(m);
      case "dt_card": return dingtalkCard(m);
      case "markdown": return markdownBubble(m.text);
      case "image": {
        var bubble = el("div", "bubble");
        var img = document.createElement("img");
        img.src = "/sim/media/" + encodeURIComponent(m.media_id);
        img.alt = "照片";
        bubble.appendChild(img);
        return bubble;
      }
      case "location": {
        var place = el("div", "bubble location");
        place.appendChild(el("div", "", "位置：" + m.label));
        place.appendChild(el("div", "coords", m.lat.toFixed(4) + ", " + m.lng.toFixed(4)));
        return place;
      }
      default: return el("div", "bubble", m.text);
    }
  }

  // WeCom template_card (button_interaction): source, main_title, sub_title_text, horizontal_content_list, button_list.
  function wecomCard(m) {
    var c = m.card || {};
    var card = el("div", "card wecom-card");
    card.dataset.cardId = m.card_id;
    if (c.source && c.source.desc) { card.appendChild(el("div", "source", c.source.desc)); }
    var title = el("div", "title", (c.main_title && c.main_title.title) || "");
    if (m.updated) { title.appendChild(el("span", "updated", "已更新")); }
    card.appendChild(title);
    if (c.main_title && c.main_title.desc) { card.appendChild(el("p", "sub", c.main_title.desc)); }
    if (c.sub_title_text) { card.appendChild(el("p", "sub", c.sub_title_text)); }
    var fields = (c.horizontal_content_list || []).map(function (f) { return [f.keyname, f.value]; });
    if (fields.length) { card.appendChild(fieldList(fields)); }
    var buttons = el("div", "buttons");
    if (c.replace_text) {  // an update that greys the button bar out: one untappable button
      var done = button(c.replace_text, "default", function () {});
      done.disabled = true;
      buttons.appendChild(done);
      card.appendChild(buttons);
      return card;
    }
    (c.button_list || []).forEach(function (b) {
      var style = { 1: "primary", 3: "danger" }[b.style] || "default";
      buttons.appendChild(button(b.text, style, function () {
        return api("/sim/api/tap", who({ card_id: m.card_id, key: b.key, label: b.text }));
      }));
    });
    if (c.button_list && c.button_list.length) { card.appendChild(buttons); }
    return card;
  }

  // DingTalk card-platform instance: the cardParamMap Banli filled (title, source, body, fields, buttons JSON, footer).
  function dingtalkCard(m) {
    var c = m.card || {};
    var card = el("div", "card dt-card");
    card.dataset.cardId = m.card_id;
    if (c.source) { card.appendChild(el("div", "source", c.source)); }
    var title = el("div", "title", c.title || "");
    if (m.updated) { title.appendChild(el("span", "updated", "已更新")); }
    card.appendChild(title);
    if (c.body) { card.appendChild(markdown(c.body)); }
    if (c.fields) { card.appendChild(markdown(c.fields)); }
    var list = [];
    try { list = JSON.parse(c.buttons || "[]"); } catch (e) { list = []; }
    var buttons = el("div", "buttons");
    list.forEach(function (b) {
      buttons.appendChild(button(b.text, "default", function () {
        return api("/sim/api/tap", who({ card_id: m.card_id, action: b.action, value: b.value || "", label: b.text }));
      }));
    });
    if (list.length) { card.appendChild(buttons); }
    if (c.footer) { card.appendChild(el("div", "footer", c.footer)); }
    return card;
  }

  function fieldList(fields) {
    var box = el("div", "fields");
    fields.forEach(function (f) {
      var row = el("div", "field");
      row.appendChild(el("span", "k", f[0]));
      row.appendChild(el("span", "v", f[1]));
      box.appendChild(row);
    });
    return box;
  }

  function button(label, style, onTap) {
    var b = el("button", style, label);
    b.type = "button";
    b.addEventListener("click", function () {
      b.disabled = true;  // one tap at a time, as a phone would
      Promise.resolve(onTap()).then(function () { b.disabled = false; }, function () { b.disabled = false; });
    });
    return b;
  }

  // -- markdown as DingTalk shows it: headings, bold, line breaks, dtmd links as tap-to-send buttons --
  function markdownBubble(text) {
    var bubble = el("div", "bubble md-bubble");
    bubble.appendChild(markdown(text));
    return bubble;
  }

  function markdown(text) {
    var box = el("div", "md");
    var group = null;  // consecutive lines that are only a dtmd link share one button row
    String(text || "").split("\n").forEach(function (raw) {
      var line = raw.replace(/\s+$/, "");
      var only = /^\[([^\]]+)\]\((dtmd:[^)\s]+)\)$/.exec(line.trim());
      if (only) {
        if (!group) { group = el("div", "buttons"); box.appendChild(group); }
        group.appendChild(dtmdButton(only[1], only[2]));
        return;
      }
      group = null;
      var heading = /^(#{1,6})\s*(.*)$/.exec(line);
      if (heading) { box.appendChild(inline(el("h" + heading[1].length), heading[2])); return; }
      if (!line) { box.appendChild(el("div", "gap")); return; }
      box.appendChild(inline(el("p"), line));
    });
    return box;
  }

  function inline(node, text) {
    var pattern = /\[([^\]]+)\]\(([^)\s]+)\)|\*\*(.+?)\*\*/g;
    var at = 0;
    var match;
    while ((match = pattern.exec(text))) {
      node.appendChild(document.createTextNode(text.slice(at, match.index)));
      if (match[3] !== undefined) {
        node.appendChild(el("strong", "", match[3]));
      } else if (match[2].indexOf("dtmd:") === 0) {
        node.appendChild(dtmdButton(match[1], match[2]));
      } else {
        var a = el("a", "", match[1]);
        if (/^https?:/.test(match[2])) { a.href = match[2]; a.target = "_blank"; a.rel = "noopener"; }
        node.appendChild(a);
      }
      at = pattern.lastIndex;
    }
    node.appendChild(document.createTextNode(text.slice(at)));
    return node;
  }

  // dtmd://dingtalkclient/sendMessage?content=… : DingTalk makes the tapping user send `content`.
  function dtmdButton(label, url) {
    var query = url.indexOf("?") >= 0 ? url.slice(url.indexOf("?") + 1) : "";
    var content = new URLSearchParams(query).get("content") || label;
    var b = button(label, "dt-button", function () { return sendText(content); });
    b.className = "dt-button";
    b.title = "点一下 = 发送「" + content + "」";
    return b;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // -- photos: shrunk in the page so a phone's 5 MB picture travels as ~150 KB -----------------------
  function sendPhoto(file) {
    shrink(file, 1024).then(function (blob) {
      var form = new FormData();
      form.append("platform", state.platform);
      form.append("person", state.person);
      form.append("photo", blob, "photo.jpg");
      return api("/sim/api/photo", form);
    });
  }

  function shrink(file, maxSide) {
    return new Promise(function (resolve) {
      var img = new Image();
      img.onload = function () {
        var scale = Math.min(1, maxSide / Math.max(img.width, img.height));
        var canvas = document.createElement("canvas");
        canvas.width = Math.round(img.width * scale);
        canvas.height = Math.round(img.height * scale);
        canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) { resolve(blob || file); }, "image/jpeg", 0.8);
        URL.revokeObjectURL(img.src);
      };
      img.onerror = function () { resolve(file); };
      img.src = URL.createObjectURL(file);
    });
  }

  // -- wiring ---------------------------------------------------------------------------------------
  Object.keys(PLATFORMS).forEach(function (p) {
    $("tab-" + p).addEventListener("click", function () { choose(p, state.person); });
  });
  $("person").addEventListener("change", function (e) { choose(state.platform, e.target.value); });
  $("send").addEventListener("click", function () { sendText($("text").value); $("text").value = ""; $("text").focus(); });
  $("text").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.isComposing) { e.preventDefault(); $("send").click(); }
  });
  $("more").addEventListener("click", function () {
    var tray = $("tray");
    tray.hidden = !tray.hidden;
    $("more").setAttribute("aria-expanded", String(!tray.hidden));
  });
  $("photo-input").addEventListener("change", function (e) {
    if (e.target.files[0]) { sendPhoto(e.target.files[0]); }
    e.target.value = "";
    $("tray").hidden = true;
  });
  Array.prototype.forEach.call(document.querySelectorAll(".place"), function (b) {
    b.addEventListener("click", function () {
      api("/sim/api/location", who({ place: b.dataset.place }));
      $("tray").hidden = true;
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll(".chip"), function (b) {
    b.addEventListener("click", function () { sendText(b.dataset.text); });
  });
  Array.prototype.forEach.call(document.querySelectorAll("[data-cards]"), function (b) {
    b.addEventListener("click", function () {
      api("/sim/api/dingtalk-cards", { on: b.dataset.cards === "true" }).then(function (answer) {
        showDingTalkMode(answer.dingtalk_cards);
      });
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("[data-jump]"), function (b) {
    b.addEventListener("click", function () {
      api("/sim/api/clock", { jump: b.dataset.jump }).then(function (answer) { showClock(answer.clock); });
    });
  });

  choose(state.platform, state.person);
})();
