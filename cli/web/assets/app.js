// SPDX-License-Identifier: MIT
// twofold's local page.  Plain JavaScript, no framework, no inline code (the
// server's Content-Security-Policy forbids it).  Every text that comes from
// the node -- much of it written by peers: names, notes, topics, reasons,
// cards -- is put in the page as text (textContent, form values), never as
// HTML.
'use strict';

(function () {
  const PAGE = 50;          // inbox and intro pages (the node allows 1-1000)
  const CONTACT_PAGE = 100; // contact pages
  const TOKEN_KEY = 'twofold-token';

  // The sign-in redirect brings the API token in the fragment (#t=...): keep
  // it in this origin's storage (origins include the port) and drop it from
  // the address bar.
  let token = null;
  const m = /^#t=([0-9a-f]{64})$/.exec(location.hash);
  if (m) {
    token = m[1];
    try { localStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode */ }
    history.replaceState(null, '', '/#inbox');
  } else {
    try { token = localStorage.getItem(TOKEN_KEY); } catch (e) { token = null; }
  }

  // DOM helpers ---------------------------------------------------------
  // el('p', {class: 'x'}, 'text', child...): strings become text nodes.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'value') { e.defaultValue = v; e.value = v; }
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.append(typeof kid === 'string' || typeof kid === 'number' ? String(kid) : kid);
    }
    return e;
  }
  // Peer-written text in its own bidi-isolated span.
  function peer(text, cls) {
    return el('bdi', {class: 'peer' + (cls ? ' ' + cls : '')}, text == null ? '' : String(text));
  }
  let uid = 0;
  function field(label, input, hint) {
    const id = 'f' + (++uid);
    input.id = id;
    const kids = [el('label', {for: id}, label), input];
    if (hint) {
      const hid = id + 'h';
      input.setAttribute('aria-describedby', hid);
      kids.push(el('small', {id: hid, class: 'hint'}, hint));
    }
    return el('div', {class: 'field'}, kids);
  }
  function when(unix) {
    if (!unix) return '-';
    const d = new Date(unix * 1000);
    const s = Math.round(unix - Date.now() / 1000);
    const a = Math.abs(s);
    const rel = a < 60 ? 'now' : a < 3600 ? Math.round(a / 60) + ' min'
      : a < 86400 ? Math.round(a / 3600) + ' h' : Math.round(a / 86400) + ' days';
    const t = el('time', {datetime: d.toISOString(), title: d.toLocaleString()},
      rel === 'now' ? 'now' : s > 0 ? 'in ' + rel : rel + ' ago');
    return t;
  }
  // How people are named, as the CLI names them: the owner's alias plainly;
  // a name a peer chose for itself quoted and followed by its short id, so
  // it never reads like an alias (a stranger may call itself "bob").  Where
  // a peer-chosen name is shown for someone (who()), the page also asks the
  // node whether that someone is a contact (else a "stranger" badge) and
  // whether the name is the owner's alias (or id) for someone else (else a
  // warning "not your bob").
  function shortId(id) {
    return el('code', {class: 'shortid'}, id ? id.slice(0, 12) + '…' : '?');
  }
  function quoted(name, id) {
    return el('span', {class: 'peername'}, '"', peer(name), '"', id ? [' ', shortId(id)] : null);
  }
  // The lookups run LOOKUPS_AT_ONCE at a time, after the view's own calls,
  // and those of a render that was replaced are dropped: a page of 50
  // strangers must not hold up the next page.
  const LOOKUPS_AT_ONCE = 2;
  let lookups = new Map(); // this render's contact.show answers, by name
  let lookupQueue = [];
  let lookupsRunning = 0;
  function pumpLookups() {
    while (lookupsRunning < LOOKUPS_AT_ONCE && lookupQueue.length) {
      const job = lookupQueue.shift();
      if (job.gen !== rendering) { job.resolve(null); continue; }
      lookupsRunning++;
      api('contact.show', {name: job.name}).catch(() => null).then((c) => {
        lookupsRunning--;
        job.resolve(c);
        pumpLookups();
      });
    }
  }
  function lookup(name) {
    if (!lookups.has(name)) {
      lookups.set(name, new Promise((resolve) => { lookupQueue.push({name, gen: rendering, resolve}); }));
      setTimeout(pumpLookups, 0);
    }
    return lookups.get(name);
  }
  // check: false where the person is a contact anyway (the sides of the
  // owner's own intros), so no lookup is needed.
  function who(contact, alias, name, check = true) {
    if (alias) return peer(alias, 'alias');
    if (!name) return shortId(contact);
    const span = quoted(name, contact);
    if (!contact || !check) return span;
    lookup(contact).then((c) => {
      if (!c || c.id !== contact) {
        span.append(' ', el('span', {class: 'badge stranger', title: 'not one of your contacts'}, 'stranger: not a contact'));
      }
    });
    lookup(name).then((c) => {
      if (c && c.id !== contact) {
        span.append(' ', el('span', {class: 'badge spoof', role: 'note', title: 'this name is how you call someone else'},
          '⚠ not your ', c.alias ? peer(c.alias, 'alias') : shortId(c.id)));
      }
    });
    return span;
  }
  function toast(text, bad) {
    const t = document.getElementById('toast');
    t.textContent = text;
    t.className = bad ? 'show bad' : 'show';
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.className = ''; }, bad ? 8000 : 4000);
  }

  // The API -------------------------------------------------------------
  class NodeError extends Error {
    constructor(e) { super(e.message || e.name); this.name = e.name; }
  }
  async function api(verb, args) {
    const r = await fetch('/api/call/' + verb, {
      method: 'POST',
      headers: {'Content-Type': 'application/json', 'X-Twofold-Token': token || ''},
      body: JSON.stringify(args || {}),
      credentials: 'same-origin',
      cache: 'no-store',
    });
    if (r.status === 403) {
      signedOut();
      throw new NodeError({name: 'E_SIGNED_OUT', message: 'not signed in'});
    }
    let reply;
    try { reply = await r.json(); } catch (e) {
      throw new NodeError({name: 'E_HTTP', message: 'the page server answered ' + r.status});
    }
    if (!reply.ok) throw new NodeError(reply.error);
    return reply.result;
  }
  function clean(args) {
    const out = {};
    for (const [k, v] of Object.entries(args)) if (v !== '' && v !== null && v !== undefined) out[k] = v;
    return out;
  }
  // Runs an action from a button, showing success or the node's refusal.
  async function act(button, verb, args, done) {
    button.disabled = true;
    try {
      const r = await api(verb, args);
      if (done) done(r);
    } catch (e) {
      toast(e.message, true);
    } finally {
      button.disabled = false;
    }
  }

  function signedOut() {
    const main = document.getElementById('main');
    main.replaceChildren(el('section', {class: 'card'},
      el('h2', {}, 'Signed out'),
      el('p', {}, 'This page is not signed in to your node (the link may be from an ' +
        'earlier run). Run ', el('code', {}, 'twofold web'), ' and open the address it prints.')));
    setLive('signed out', 'bad');
  }

  // Live updates (Server-Sent Events fed by the node's watch) ---------------
  function setLive(text, cls) {
    const l = document.getElementById('live');
    l.textContent = text;
    l.className = 'live ' + (cls || '');
  }
  let refreshTimer = null;
  function onEvent(ev) {
    setLive('live · ' + ev.type, 'ok');
    const kind = ev.type.split('.')[0];
    const want = {inbox: ['inbox'], intros: ['intro'], contacts: ['contact'],
      status: ['contact', 'intro', 'inbox', 'message', 'node'], propose: []}[view] || [];
    if (!want.includes(kind)) return;
    // Never redraw under the owner's hands: while they type, offer a button.
    if (dirty()) { document.getElementById('refresh').hidden = false; return; }
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => render(true), 150);
  }
  function dirty() {
    const main = document.getElementById('main');
    if (main.contains(document.activeElement) && document.activeElement.matches('input, textarea, select')) return true;
    for (const f of main.querySelectorAll('textarea:not([readonly]), input[type=text], input[type=search], input[type=number]')) {
      if (f.value !== f.defaultValue) return true;
    }
    return false;
  }
  function connectEvents() {
    if (!token) return;
    const es = new EventSource('/api/events?t=' + encodeURIComponent(token));
    es.onopen = () => setLive('live', 'ok');
    es.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (e) { /* ignore */ } };
    // The browser retries a dropped stream by itself, but gives up for good
    // once the server answers with an error (the node was down): then try
    // again every few seconds.
    es.onerror = () => {
      setLive('reconnecting…', 'warn');
      if (es.readyState === EventSource.CLOSED) setTimeout(connectEvents, 5000);
    };
  }

  // Paging: newest-first lists page with `before`; we keep the cursors of
  // the pages seen so "Newer" can go back.
  function pager(state, items, full, key) {
    const nav = el('nav', {class: 'pager', 'aria-label': 'Pages'});
    if (state.stack.length > 0) {
      nav.append(el('button', {type: 'button', onclick: () => { state.cursor = state.stack.pop(); render(); }}, '← Newer'));
    }
    if (full && items.length > 0) {
      nav.append(el('button', {type: 'button', onclick: () => {
        state.stack.push(state.cursor);
        state.cursor = items[items.length - 1][key || 'id'];
        render();
      }}, 'Older →'));
    }
    nav.append(el('span', {class: 'muted'}, 'page ' + (state.stack.length + 1)));
    return nav;
  }

  // Inbox -------------------------------------------------------------------
  const inboxState = {cursor: null, stack: [], all: false};
  async function viewInbox(main) {
    const args = clean({limit: PAGE, before: inboxState.cursor, all: inboxState.all || null});
    const items = await api('inbox.list', args);
    const all = el('input', {type: 'checkbox', checked: inboxState.all, onchange: (e) => {
      inboxState.all = e.target.checked; inboxState.cursor = null; inboxState.stack = []; render();
    }});
    main.append(el('div', {class: 'bar'}, el('h2', {}, 'Inbox'),
      el('label', {class: 'inline'}, all, ' show answered and closed ones too')));
    if (items.length === 0) main.append(el('p', {class: 'empty'}, inboxState.all ? 'Nothing here.' : 'No introduction is waiting for you.'));
    const list = el('ul', {class: 'items', 'aria-label': 'Introductions proposed to you'});
    for (const it of items) list.append(el('li', {}, inboxItem(it)));
    main.append(list, pager(inboxState, items, items.length === PAGE));
  }
  function inboxItem(it) {
    const card = el('article', {class: 'card', 'data-id': it.id, 'data-state': it.state});
    card.append(el('h3', {}, peer(it.topic, 'topic'), ' ', el('span', {class: 'badge ' + it.state}, it.state)));
    const dl = el('dl', {});
    const row = (k, ...v) => dl.append(el('dt', {}, k), el('dd', {}, ...v));
    row('From', who(it.connector, it.connector_alias, it.connector_name));
    row('About the other', it.about_other ? peer(it.about_other, 'para') : el('span', {class: 'muted'}, '(not said)'));
    if (it.note) row('Note', peer(it.note, 'para'));
    row('Mode', it.mode);
    row('Expires', when(it.expires));
    if (it.decided_by) row('Decided by', it.decided_by);
    if (it.other) row('Introduced to', peer(it.other.slice(0, 16) + '…'));
    if (it.other_note) row('Their note', peer(it.other_note, 'para'));
    card.append(dl);
    if (it.state === 'pending') {
      const note = el('textarea', {rows: 2, maxlength: 4000});
      const reason = el('textarea', {rows: 2, maxlength: 4000});
      const acc = el('button', {type: 'submit', class: 'primary'}, 'Accept');
      const dec = el('button', {type: 'submit', class: 'danger'}, 'Decline');
      acc.addEventListener('click', (e) => { e.preventDefault(); act(acc, 'intro.accept', clean({id: it.id, note: note.value}), () => { toast('Accepted.'); render(true); }); });
      dec.addEventListener('click', (e) => { e.preventDefault(); act(dec, 'intro.decline', clean({id: it.id, reason: reason.value}), () => { toast('Declined.'); render(true); }); });
      card.append(el('form', {class: 'answer', 'aria-label': 'Answer'},
        el('div', {class: 'cols'},
          el('div', {}, field('Note to the other person (optional)', note), acc),
          el('div', {}, field('Private reason, for the connector only (optional)', reason), dec))));
    }
    return card;
  }

  // Intros I proposed ----------------------------------------------------------
  const introState = {cursor: null, stack: [], state: ''};
  async function viewIntros(main) {
    const items = await api('intro.list', clean({limit: PAGE, before: introState.cursor, state: introState.state}));
    const sel = el('select', {onchange: (e) => { introState.state = e.target.value; introState.cursor = null; introState.stack = []; render(); }},
      ['', 'asking', 'introduced', 'declined', 'withdrawn', 'expired'].map((s) =>
        el('option', {value: s, selected: s === introState.state}, s || 'all')));
    main.append(el('div', {class: 'bar'}, el('h2', {}, 'Introductions I proposed'), field('State', sel)));
    if (items.length === 0) main.append(el('p', {class: 'empty'}, 'None yet. ', el('a', {href: '#propose'}, 'Propose one.')));
    const list = el('ul', {class: 'items', 'aria-label': 'Introductions you proposed'});
    for (const it of items) list.append(el('li', {}, introItem(it)));
    main.append(list, pager(introState, items, items.length === PAGE));
  }
  function side(s, label) {
    return el('div', {class: 'side', 'data-state': s.state},
      el('span', {class: 'muted'}, label + ' '), who(s.contact, s.alias, s.name, false), ' ',
      el('span', {class: 'badge ' + s.state}, s.state.replace('_', ' ')),
      s.reason ? el('div', {class: 'reason'}, 'reason: ', peer(s.reason)) : null);
  }
  function introItem(it) {
    const card = el('article', {class: 'card', 'data-id': it.id, 'data-state': it.state});
    card.append(el('h3', {}, peer(it.topic, 'topic'), ' ', el('span', {class: 'badge ' + it.state}, it.state)));
    card.append(el('div', {class: 'sides'}, side(it.a, 'A'), side(it.b, 'B')));
    card.append(el('p', {class: 'muted small'}, it.mode, ' · proposed ', when(it.created), ' · expires ', when(it.expires), ' · ', el('code', {}, it.id.slice(0, 12))));
    if (it.state === 'asking') {
      const b = el('button', {type: 'button'}, 'Withdraw');
      b.addEventListener('click', () => { if (confirm('Withdraw this introduction?')) act(b, 'intro.withdraw', {id: it.id}, () => render(true)); });
      card.append(b);
    } else if (it.state !== 'introduced') {
      const b = el('button', {type: 'button'}, 'Forget');
      b.addEventListener('click', () => act(b, 'intro.rm', {id: it.id}, () => render(true)));
      card.append(b);
    }
    return card;
  }

  // Propose -------------------------------------------------------------------
  async function viewPropose(main) {
    const contacts = await api('contact.list', {limit: 1000});
    const dl = el('datalist', {id: 'contact-names'},
      contacts.map((c) => el('option', {value: c.alias || c.id}, '"' + c.name + '"')));
    const topics = el('datalist', {id: 'topic-suggestions'});
    const a = el('input', {type: 'text', list: 'contact-names', required: true, autocomplete: 'off'});
    const b = el('input', {type: 'text', list: 'contact-names', required: true, autocomplete: 'off'});
    const topic = el('input', {type: 'text', list: 'topic-suggestions', required: true, pattern: '[a-z0-9\\-]{1,64}', autocomplete: 'off'});
    const note = el('textarea', {rows: 2});
    const noteA = el('textarea', {rows: 2});
    const noteB = el('textarea', {rows: 2});
    const aboutA = el('textarea', {rows: 2});
    const aboutB = el('textarea', {rows: 2});
    const seq = el('input', {type: 'checkbox'});
    const days = el('input', {type: 'number', min: 1, max: 365, value: 14});
    const prevA = el('div', {class: 'preview', 'aria-live': 'polite'});
    const prevB = el('div', {class: 'preview', 'aria-live': 'polite'});
    const submit = el('button', {type: 'submit', class: 'primary'}, 'Propose');
    const known = new Map(contacts.map((c) => [c.alias || c.id, c]));
    async function lookup(name) {
      if (!name) return null;
      if (known.has(name)) return known.get(name);
      try { const c = await api('contact.show', {name}); known.set(name, c); return c; } catch (e) { return null; }
    }
    function preview(box, me, other, myNote, aboutOther) {
      const rows = [
        ['From', 'you (your name as on your card)'],
        ['Topic', topic.value || '…'],
        ['About the other', aboutOther || '(nothing: they will not learn who the other is before both accept)'],
        ['Note', myNote || '(none)'],
        ['Mode', seq.checked ? (me === 'A' ? 'sequential: asked first' : 'sequential: asked once A accepts') : 'parallel: both asked now'],
        ['Expires', 'in ' + (days.value || 14) + ' days'],
      ];
      box.replaceChildren(el('h4', {}, 'What ', peer(other || me), ' will see'),
        el('dl', {}, rows.map(([k, v]) => [el('dt', {}, k), el('dd', {}, peer(v, 'para'))])));
    }
    async function update() {
      const [ca, cb] = await Promise.all([lookup(a.value.trim()), lookup(b.value.trim())]);
      preview(prevA, 'A', ca ? (ca.alias || '"' + ca.name + '"') : a.value, noteA.value || note.value, aboutB.value);
      preview(prevB, 'B', cb ? (cb.alias || '"' + cb.name + '"') : b.value, noteB.value || note.value, aboutA.value);
      // Topics: what one offers and the other seeks, then everything either lists.
      const sugg = new Set();
      if (ca && cb) {
        for (const t of ca.offers || []) if ((cb.seeks || []).includes(t)) sugg.add(t);
        for (const t of cb.offers || []) if ((ca.seeks || []).includes(t)) sugg.add(t);
      }
      for (const c of [ca, cb]) if (c) for (const t of [...(c.offers || []), ...(c.seeks || [])]) sugg.add(t);
      topics.replaceChildren(...[...sugg].slice(0, 50).map((t) => el('option', {value: t})));
    }
    const form = el('form', {class: 'card', 'aria-label': 'Propose an introduction'},
      dl, topics,
      el('div', {class: 'cols'},
        field('Person A', a, 'an alias, an id or its first characters'),
        field('Person B', b, 'an alias, an id or its first characters')),
      field('Topic', topic, 'a tag: lowercase letters, digits and dashes'),
      field('Note to both (optional)', note),
      el('div', {class: 'cols'},
        field('Note to A only (replaces the note to both)', noteA),
        field('Note to B only (replaces the note to both)', noteB)),
      el('div', {class: 'cols'},
        field('What B is told about A (optional)', aboutA),
        field('What A is told about B (optional)', aboutB)),
      el('div', {class: 'cols'},
        el('label', {class: 'inline'}, seq, ' Sequential: ask A first, B only once A accepts'),
        field('Expires after (days)', days)),
      el('div', {class: 'cols'}, prevA, prevB),
      submit);
    form.addEventListener('input', update);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(submit, 'intro.propose', clean({
        a: a.value.trim(), b: b.value.trim(), topic: topic.value.trim(), note: note.value,
        note_a: noteA.value, note_b: noteB.value, about_a: aboutA.value, about_b: aboutB.value,
        sequential: seq.checked, expires_s: Math.round(Number(days.value || 14) * 86400),
      }), () => { toast('Proposed.'); location.hash = '#intros'; });
    });
    main.append(el('h2', {}, 'Propose an introduction'), form);
    update();
  }

  // Contacts ---------------------------------------------------------------------
  const contactState = {after: null, before: null, filter: '', open: null};
  async function viewContacts(main) {
    const args = clean({limit: CONTACT_PAGE, after: contactState.after, before: contactState.before});
    const [items, me] = await Promise.all([api('contact.list', args), api('profile.show')]);
    const search = el('input', {type: 'search', value: contactState.filter, placeholder: 'name, alias, tag or id'});
    const table = el('table', {class: 'contacts'});
    function fill() {
      const q = search.value.trim().toLowerCase();
      contactState.filter = search.value;
      const rows = items.filter((c) => !q || [c.name, c.alias, c.id, ...(c.tags || [])].some((s) => s && s.toLowerCase().includes(q)));
      table.replaceChildren(el('caption', {class: 'sr'}, 'Contacts'),
        el('thead', {}, el('tr', {}, ['Name', 'Alias', 'Trust', 'Tags', 'Introduced by', ''].map((h) => el('th', {scope: 'col'}, h)))),
        el('tbody', {}, rows.map((c) => el('tr', {'data-id': c.id, class: c.blocked ? 'blocked' : ''},
          el('td', {}, quoted(c.name, c.id)), el('td', {}, c.alias ? peer(c.alias, 'alias') : ''), el('td', {}, c.trust),
          el('td', {}, (c.tags || []).join(', ')),
          el('td', {}, c.introduced_by ? peer(c.introduced_by.slice(0, 12) + '…') : ''),
          el('td', {}, el('button', {type: 'button', onclick: () => { contactState.open = c.id; render(); }}, 'Open', el('span', {class: 'sr'}, ' ' + (c.alias || '"' + c.name + '"'))))))));
    }
    search.addEventListener('input', fill);
    search.addEventListener('keydown', async (e) => {
      if (e.key !== 'Enter' || !search.value.trim()) return;
      e.preventDefault();
      try { const c = await api('contact.show', {name: search.value.trim()}); contactState.open = c.id; render(); } catch (err) { toast(err.message, true); }
    });
    fill();
    main.append(el('h2', {}, 'Contacts'));
    if (contactState.open) main.append(await contactDetail(contactState.open));
    main.append(field('Search this page (Enter: look up an alias or id among all)', search), table);
    const nav = el('nav', {class: 'pager', 'aria-label': 'Pages'});
    if (contactState.after || contactState.before) {
      nav.append(el('button', {type: 'button', onclick: () => { contactState.after = null; contactState.before = items.length ? items[0].id : null; render(); }}, '← Previous'));
    }
    if (items.length === CONTACT_PAGE) {
      nav.append(el('button', {type: 'button', onclick: () => { contactState.before = null; contactState.after = items[items.length - 1].id; render(); }}, 'Next →'));
    }
    main.append(nav);
    // Add a card; your own card.
    const card = el('textarea', {rows: 3, required: true, spellcheck: false});
    const alias = el('input', {type: 'text', pattern: '[A-Za-z0-9][A-Za-z0-9._\\-]{0,31}'});
    const trust = el('select', {}, ['known', 'acquaintance', 'close', 'none'].map((t) => el('option', {value: t}, t)));
    const add = el('button', {type: 'submit', class: 'primary'}, 'Add contact');
    const addForm = el('form', {class: 'card', 'aria-label': 'Add a contact'}, el('h3', {}, 'Add a contact by their card'),
      field('Their card (paste)', card), el('div', {class: 'cols'}, field('Alias (optional)', alias), field('Trust', trust)), add);
    addForm.addEventListener('submit', (e) => {
      e.preventDefault();
      act(add, 'contact.add', clean({card: card.value.trim(), alias: alias.value.trim(), trust: trust.value}), (c) => { toast('Added ' + (c.alias || '"' + c.name + '"') + '.'); card.value = ''; render(true); });
    });
    const mine = el('textarea', {rows: 3, readonly: true, spellcheck: false, value: me.card});
    const copy = el('button', {type: 'button', onclick: async () => { try { await navigator.clipboard.writeText(me.card); toast('Copied.'); } catch (e) { mine.select(); } }}, 'Copy');
    main.append(addForm, el('section', {class: 'card', 'aria-label': 'Your card'}, el('h3', {}, 'Your card'),
      el('p', {}, 'Give this line to people so they can add you: ', peer(me.name)), field('Your card (text)', mine), copy));
  }
  async function contactDetail(id) {
    let c;
    try { c = await api('contact.show', {name: id}); } catch (e) { contactState.open = null; return el('p', {class: 'bad'}, e.message); }
    const alias = el('input', {type: 'text', value: c.alias || ''});
    const trust = el('select', {}, ['none', 'acquaintance', 'known', 'close'].map((t) => el('option', {value: t, selected: t === c.trust}, t)));
    const tags = el('input', {type: 'text', value: (c.tags || []).join(', ')});
    const save = el('button', {type: 'submit', class: 'primary'}, 'Save');
    const block = el('button', {type: 'button'}, c.blocked ? 'Unblock' : 'Block');
    const rm = el('button', {type: 'button', class: 'danger'}, 'Remove');
    const close = el('button', {type: 'button', onclick: () => { contactState.open = null; render(); }}, 'Close');
    block.addEventListener('click', () => act(block, 'contact.set', {name: c.id, blocked: !c.blocked}, () => render(true)));
    rm.addEventListener('click', () => { if (confirm('Remove this contact?')) act(rm, 'contact.rm', {name: c.id}, () => { contactState.open = null; render(true); }); });
    const form = el('form', {class: 'card detail', 'aria-label': 'Contact'},
      el('h3', {}, c.alias ? [peer(c.alias, 'alias'), ' '] : null, quoted(c.name, c.id), c.blocked ? el('span', {class: 'badge declined'}, 'blocked') : null),
      el('dl', {},
        el('dt', {}, 'Id'), el('dd', {}, el('code', {class: 'wrap'}, c.id)),
        el('dt', {}, 'Fingerprint'), el('dd', {}, el('code', {}, c.fingerprint)),
        el('dt', {}, 'Offers'), el('dd', {}, peer((c.offers || []).join(', '))),
        el('dt', {}, 'Seeks'), el('dd', {}, peer((c.seeks || []).join(', '))),
        el('dt', {}, 'Addresses'), el('dd', {}, peer((c.addrs || []).join(', '))),
        el('dt', {}, 'Introduced by'), el('dd', {}, c.introduced_by ? peer(c.introduced_by) : '-'),
        el('dt', {}, 'Added'), el('dd', {}, when(c.added))),
      el('div', {class: 'cols'}, field('Alias', alias), field('Trust', trust), field('Tags (comma-separated)', tags)),
      field('Their card', el('textarea', {rows: 3, readonly: true, spellcheck: false, value: c.card || ''})),
      el('div', {class: 'buttons'}, save, block, rm, close));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const t = tags.value.split(',').map((s) => s.trim()).filter((s) => s);
      act(save, 'contact.set', {name: c.id, alias: alias.value.trim(), trust: trust.value, tags: t}, () => { toast('Saved.'); render(true); });
    });
    return form;
  }

  // Policy -----------------------------------------------------------------------
  async function viewPolicy(main) {
    const p = await api('policy.show');
    const out = el('div', {role: 'status', 'aria-live': 'polite'});
    const reload = el('button', {type: 'button'}, 'Reload the policy file');
    reload.addEventListener('click', async () => {
      reload.disabled = true;
      try {
        const r = await api('policy.reload');
        out.replaceChildren(el('p', {class: 'ok'}, 'Loaded ' + r.rules + ' rule(s) from ', el('code', {}, r.file)));
        setTimeout(render, 1500);
      } catch (e) {
        // FILE:LINE:COLUMN: what is wrong
        const mm = /^(.*):(\d+):(\d+): (.*)$/.exec(e.message);
        out.replaceChildren(el('p', {class: 'bad'}, mm ? ['Line ', el('strong', {}, mm[2]), ', column ', el('strong', {}, mm[3]), ': ', mm[4], ' (', el('code', {}, mm[1]), '). The previous policy stays.'] : e.message));
      } finally { reload.disabled = false; }
    });
    const rules = p.rules.length === 0 ? el('p', {class: 'empty'}, p.loaded ? 'The policy has no rules.' : 'There is no policy file: every proposal is asked.')
      : el('ol', {class: 'rules'}, p.rules.map((r) => el('li', {value: r.line}, el('code', {}, r.text))));
    const connector = el('input', {type: 'text', required: true, value: 'unknown', list: 'contact-names'});
    const topic = el('input', {type: 'text', required: true});
    const mode = el('select', {}, el('option', {value: 'parallel'}, 'parallel'), el('option', {value: 'sequential'}, 'sequential'));
    const test = el('button', {type: 'submit'}, 'Test');
    const result = el('p', {role: 'status', 'aria-live': 'polite'});
    const form = el('form', {class: 'card', 'aria-label': 'Test the policy'}, el('h3', {}, 'Test: what would the policy do?'),
      el('div', {class: 'cols'}, field('Connector', connector, 'a contact, or unknown'), field('Topic', topic), field('Mode', mode)), test, result);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(test, 'policy.test', {connector: connector.value.trim(), topic: topic.value.trim(), mode: mode.value}, (r) => {
        result.replaceChildren(el('strong', {}, r.action), r.rule ? ' (rule at line ' + r.line + ')' : ' (no rule matched)');
      });
    });
    main.append(el('h2', {}, 'Policy'), el('section', {class: 'card'}, el('p', {}, 'File: ', el('code', {}, p.file || '-')), rules, reload, out), form);
  }

  // Status ------------------------------------------------------------------
  async function viewStatus(main) {
    const s = await api('status');
    const dl = el('dl', {});
    const row = (k, v) => dl.append(el('dt', {}, k), el('dd', {}, v));
    row('Name', peer(s.name));
    row('Id', el('code', {class: 'wrap'}, s.id));
    row('Fingerprint', el('code', {}, s.fingerprint));
    row('Listening on', s.listen || '-');
    row('Version', s.version);
    row('Up for', Math.round(s.uptime_s / 60) + ' min');
    row('Contacts', String(s.contacts));
    row('Outbox', String(s.outbox));
    row('Links', (s.limits ? s.limits.links_in + ' in, ' + s.limits.links_out + ' out' : '-'));
    row('Store', Math.round(s.store_bytes / 1024) + ' KiB');
    const peers = el('table', {}, el('caption', {}, 'Connections'),
      el('thead', {}, el('tr', {}, ['Who', 'Address', 'Direction', 'State', 'In flight'].map((h) => el('th', {scope: 'col'}, h)))),
      el('tbody', {}, (s.peers || []).map((p) => el('tr', {}, el('td', {}, who(p.id, p.alias, null)), el('td', {}, p.addr), el('td', {}, p.direction), el('td', {}, p.state), el('td', {}, String(p.in_flight))))));
    // The outbox has no paging in the control protocol: list it on demand.
    const obBox = el('div', {class: 'scroll'});
    const show = el('button', {type: 'button'}, 'List the outbox (' + s.outbox + ')');
    show.addEventListener('click', () => act(show, 'outbox.list', {}, (outbox) => {
      obBox.replaceChildren(el('table', {}, el('caption', {}, 'Outbox' + (outbox.length > 200 ? ' (the first 200 of ' + outbox.length + ')' : '')),
        el('thead', {}, el('tr', {}, ['To', 'Type', 'Attempts', 'Expires', 'Last error'].map((h) => el('th', {scope: 'col'}, h)))),
        el('tbody', {}, outbox.slice(0, 200).map((o) => el('tr', {}, el('td', {}, who(o.to, o.alias, null)), el('td', {}, o.type), el('td', {}, String(o.attempts)), el('td', {}, when(o.expires)), el('td', {}, o.last_error ? peer(o.last_error) : ''))))));
    }));
    main.append(el('h2', {}, 'Status'), el('section', {class: 'card'}, dl), el('div', {class: 'scroll'}, peers), s.outbox > 0 ? show : null, obBox);
  }

  // Router --------------------------------------------------------------------
  const VIEWS = {inbox: viewInbox, intros: viewIntros, propose: viewPropose, contacts: viewContacts, policy: viewPolicy, status: viewStatus};
  let view = 'inbox';
  let rendering = 0;
  async function render(quiet) {
    if (!token) { signedOut(); return; }
    const name = (location.hash.replace(/^#/, '') || 'inbox');
    view = VIEWS[name] ? name : 'inbox';
    for (const a of document.querySelectorAll('header nav a')) {
      if (a.getAttribute('href') === '#' + view) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const main = document.getElementById('main');
    const next = el('div', {class: 'view', 'data-view': view});
    const mine = ++rendering;
    lookups = new Map();
    lookupQueue = lookupQueue.filter((j) => { j.resolve(null); return false; });
    const t0 = performance.now();
    try {
      await VIEWS[view](next);
    } catch (e) {
      if (e.name === 'E_SIGNED_OUT') return;
      next.replaceChildren(el('h2', {}, 'Cannot show this page'), el('p', {class: 'bad'}, e.message));
    }
    if (mine !== rendering) return; // a newer render started
    // A live update keeps the scroll position.
    const y = window.scrollY;
    main.replaceChildren(next);
    document.getElementById('refresh').hidden = true;
    main.setAttribute('data-render-ms', String(Math.round(performance.now() - t0)));
    if (quiet) window.scrollTo(0, y);
    else main.focus({preventScroll: true});
    document.title = 'twofold · ' + view;
  }
  window.addEventListener('hashchange', () => render());
  document.addEventListener('DOMContentLoaded', () => {
    document.getElementById('refresh').addEventListener('click', () => render(true));
    render();
    connectEvents();
  });
}());
