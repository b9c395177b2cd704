// Submit a job: POST /jobs {title, description, config, stake, priority}. The form builds the config
// from the trainer's fields (js/trainers.js); the advanced editor shows that JSON and, once edited, is
// sent as it is. The server's refusals (22023 with message, detail and hint) land next to the field
// they name; anything else in a banner.
import { get, post } from '../api.js';
import { DATASET_FIELDS, FIELDS, SYNTHETIC, TRAINERS, checkValue, parseValue } from '../trainers.js';
import { errorBanner, field, fmtTokens, h, markRendered, pageHead, replace, uid } from '../ui.js';

function input(spec, value) {
  if (spec.type === 'choice')
    return h('select', null, spec.choices.map((c) => h('option', { value: c, selected: c === value, text: c })));
  if (spec.type === 'layers') return h('input', { type: 'text', inputmode: 'numeric', value: value.join(', '), autocomplete: 'off' });
  return h('input', {
    type: 'number', value: String(value ?? ''), inputmode: spec.type === 'int' ? 'numeric' : 'decimal',
    step: spec.step || '1', min: spec.min !== undefined && !spec.minOpen ? String(spec.min) : null,
    max: spec.max !== undefined && spec.max < Number.MAX_SAFE_INTEGER && !spec.maxOpen ? String(spec.max) : null,
  });
}

export default async function submit(ctx) {
  const { main, signal } = ctx;
  const banner = h('div', { 'aria-live': 'polite' });

  // ---- the job ----
  const title = field('Title', h('input', { name: 'title', maxlength: '200', required: true, autocomplete: 'off' }),
    { hint: '1 to 200 characters.', span: true });
  const description = field('Description (optional)', h('textarea', { name: 'description', rows: '3', maxlength: '10000' }),
    { hint: 'What the job is for; up to 10,000 characters.', span: true });

  // ---- trainer picker ----
  const trainerName = uid('trainer');
  const trainerError = h('p', { class: 'field-error', id: uid('trainer-error'), 'aria-live': 'polite' });
  const trainerChoices = h('div', { class: 'choice-group' }, TRAINERS.map((t) =>
    h('label', { class: 'choice' },
      h('input', { type: 'radio', name: trainerName, value: t.name, checked: t.name === 'mlp', 'aria-describedby': trainerError.id }),
      h('span', null, h('strong', { text: `${t.label} · ${t.name}` }), t.about))));
  const trainerFieldsBox = h('div', { class: 'form-grid' });
  const trainerSet = h('fieldset', null, h('legend', { text: 'Trainer' }), trainerChoices, trainerError,
    h('h3', { class: 'visually-hidden', text: 'Trainer fields' }), h('div', { class: 'trainer-fields' }, trainerFieldsBox));

  // ---- dataset ----
  const dsKind = uid('dskind');
  const generator = field('Generator', h('select', { name: 'generator' }));
  const dsFieldsBox = h('div', { class: 'form-grid' });
  const url = field('CSV URL', h('input', { type: 'url', name: 'url', placeholder: 'https://example.com/data.csv', autocomplete: 'off' }),
    { hint: 'http(s):// (public addresses) or file:// under the node\'s data directory; a header row, numeric features.' });
  const label = field('Label column', h('input', { name: 'label', autocomplete: 'off' }), { hint: 'The column to predict.' });
  const synthBox = h('div', { class: 'stack' }, h('div', { class: 'form-grid' }, generator.el), dsFieldsBox);
  const urlBox = h('div', { class: 'form-grid', hidden: true }, url.el, label.el);
  const dsRadios = h('div', { class: 'radio-row', role: 'radiogroup', 'aria-label': 'Dataset source' },
    h('label', null, h('input', { type: 'radio', name: dsKind, value: 'synthetic', checked: true }), 'Synthetic'),
    h('label', null, h('input', { type: 'radio', name: dsKind, value: 'url' }), 'CSV from a URL'));
  const dsSet = h('fieldset', null, h('legend', { text: 'Dataset' }), dsRadios, synthBox, urlBox);

  // ---- stake and priority ----
  const stake = field('Stake (tokens)', h('input', { type: 'number', name: 'stake', value: '100', min: '1', step: '1', inputmode: 'numeric', required: true }),
    { hint: 'Held in escrow; 80% goes to the node that completes the job, all of it comes back if it fails.' });
  const priority = field('Priority', h('input', { type: 'number', name: 'priority', value: '0', min: '-1000', max: '1000', step: '1', inputmode: 'numeric' }),
    { hint: '-1,000 to 1,000; higher runs first.' });
  const balanceNote = h('p', { class: 'hint', 'aria-live': 'polite' });

  // ---- advanced JSON ----
  const json = field('Config (JSON)', h('textarea', { class: 'code', name: 'config', spellcheck: 'false', autocomplete: 'off', rows: '14' }),
    { hint: 'This is the config sent with the job. Edit it to use keys the form does not show; then it is sent as you wrote it.', span: true });
  const jsonNote = h('div', { class: 'banner banner-info', hidden: true },
    h('p', null, 'You edited the JSON: it is sent as written, and the trainer and dataset fields above are off. '),
    h('p', null, h('button', { type: 'button', class: 'link-button', text: 'Discard my edits and use the form', on: { click: () => { edited = false; sync(); } } })));
  const advanced = h('details', { class: 'advanced' }, h('summary', { text: 'Advanced: the config as JSON' }), jsonNote, json.el);

  const submitBtn = h('button', { class: 'button', type: 'submit', text: 'Submit job' });
  let edited = false;
  const fieldInputs = new Map(); // key -> {f, spec, scope}

  function trainer() {
    return TRAINERS.find((t) => t.name === trainerChoices.querySelector('input:checked')?.value) || TRAINERS[0];
  }
  function dsSource() {
    return dsRadios.querySelector('input:checked').value;
  }

  function buildTrainerFields() {
    const t = trainer();
    const keep = new Map([...fieldInputs].filter(([k]) => k.startsWith('t.')).map(([k, v]) => [k, v.f.control.value]));
    for (const k of [...fieldInputs.keys()]) if (k.startsWith('t.')) fieldInputs.delete(k);
    replace(trainerFieldsBox, t.fields.length
      ? t.fields.map((name) => {
        const spec = FIELDS[name];
        const f = field(spec.label, input(spec, spec.def), { hint: spec.hint });
        f.control.name = name;
        if (keep.has(`t.${name}`)) f.control.value = keep.get(`t.${name}`);
        fieldInputs.set(`t.${name}`, { f, spec, name });
        return f.el;
      })
      : h('p', { class: 'hint', text: 'This trainer takes no fields.' }));
    // the generators this trainer can learn from
    const gens = Object.entries(SYNTHETIC).filter(([, g]) => g.task === t.dataset);
    const was = generator.control.value;
    replace(generator.control, gens.map(([k, g]) => h('option', { value: k, selected: k === was, text: `${g.label} — ${g.about}` })));
    dsSet.hidden = t.dataset === 'none';
  }

  function buildDatasetFields() {
    const g = SYNTHETIC[generator.control.value];
    for (const k of [...fieldInputs.keys()]) if (k.startsWith('d.')) fieldInputs.delete(k);
    replace(dsFieldsBox, g ? g.keys.map((name) => {
      const spec = DATASET_FIELDS[name];
      const def = name === 'classes' ? g.classes : name === 'noise' ? g.noise : spec.def;
      const f = field(spec.label, input(spec, def), { hint: spec.hint });
      f.control.name = `dataset.${name}`;
      fieldInputs.set(`d.${name}`, { f, spec, name: `dataset.${name}` });
      return f.el;
    }) : []);
  }

  /** The config the form describes, and the first field error (with its field). */
  function formConfig() {
    const t = trainer();
    const config = { trainer: t.name };
    let firstError = null;
    for (const [key, { f, spec, name }] of fieldInputs) {
      if (key.startsWith('d.') && (t.dataset === 'none' || dsSource() !== 'synthetic')) continue;
      const msg = checkValue(name, spec, f.control.value);
      if (msg) {
        firstError ??= { f, msg };
        continue;
      }
      if (spec.optional && String(f.control.value).trim() === '') continue; // the worker's default
      const v = parseValue(spec, f.control.value);
      if (key.startsWith('t.')) config[name] = v;
    }
    if (t.dataset !== 'none') {
      if (dsSource() === 'synthetic') {
        const ds = { synthetic: generator.control.value };
        for (const [key, { f, spec, name }] of fieldInputs)
          if (key.startsWith('d.') && !checkValue(name, spec, f.control.value)) ds[name.slice(8)] = parseValue(spec, f.control.value);
        config.dataset = ds;
      } else {
        config.dataset = { url: url.control.value.trim(), label: label.control.value.trim() };
        if (!firstError && !/^(https?|file):\/\/\S+$/i.test(config.dataset.url))
          firstError = { f: url, msg: 'dataset.url must start with http://, https:// or file://' };
        if (!firstError && !config.dataset.label) firstError = { f: label, msg: 'dataset.label is required: the name of the label column' };
      }
    }
    return { config, firstError };
  }

  function sync() {
    jsonNote.hidden = !edited;
    trainerSet.disabled = edited;
    dsSet.disabled = edited;
    if (!edited) json.control.value = JSON.stringify(formConfig().config, null, 2);
  }

  trainerChoices.addEventListener('change', () => { buildTrainerFields(); buildDatasetFields(); sync(); });
  generator.control.addEventListener('change', () => { buildDatasetFields(); sync(); });
  dsRadios.addEventListener('change', () => {
    const s = dsSource();
    synthBox.hidden = s !== 'synthetic';
    urlBox.hidden = s !== 'url';
    sync();
  });
  for (const box of [trainerFieldsBox, dsFieldsBox, urlBox]) box.addEventListener('input', () => sync());
  json.control.addEventListener('input', () => {
    edited = true;
    jsonNote.hidden = false;
    trainerSet.disabled = true;
    dsSet.disabled = true;
    json.setError(null);
  });

  const allFields = () => [title, description, stake, priority, json, url, label, ...[...fieldInputs.values()].map((v) => v.f)];

  /** Puts a server error next to the field it names; false when no field fits. */
  function placeError(err) {
    const m = `${err.message} ${err.details || ''}`.toLowerCase();
    const at = (f) => { f.setError(err); f.control.focus(); return true; };
    if (/title/.test(err.message)) return at(title);
    if (/description/.test(err.message)) return at(description);
    if (err.code === 'MM001' || /stake/.test(err.message)) return at(stake);
    if (/priority/.test(err.message)) return at(priority);
    if (/config|trainer|runner/.test(m)) {
      // the workers' validator names the key first ("invalid config: epochs must be ..."): a form
      // field for that key gets the message when the user filled the form, not the JSON
      const key = /^invalid config: ([a-z_]+(?:\.[a-z_]+)?)/.exec(err.message)?.[1];
      const named = key && !edited && [...fieldInputs.values()].find((v) => v.name === key);
      if (named) return at(named.f);
      advanced.open = true;
      if (/trainer/.test(m) && !edited) replace(trainerError, err.message, err.hint ? ` ${err.hint}` : '');
      return at(json);
    }
    return false;
  }

  const form = h('form', {
    novalidate: true,
    on: {
      async submit(e) {
        e.preventDefault();
        banner.replaceChildren();
        trainerError.replaceChildren();
        for (const f of allFields()) f.setError(null);
        let config;
        if (edited) {
          try {
            config = JSON.parse(json.control.value);
          } catch (err) {
            advanced.open = true;
            json.setError({ message: 'This is not valid JSON.', details: err.message });
            json.control.focus();
            return;
          }
        } else {
          const built = formConfig();
          if (built.firstError) {
            built.firstError.f.setError(built.firstError.msg);
            built.firstError.f.control.focus();
            return;
          }
          config = built.config;
        }
        if (!title.control.value.trim()) {
          title.setError('Give the job a title.');
          title.control.focus();
          return;
        }
        const stakeV = stake.control.value.trim();
        if (!/^\d+$/.test(stakeV)) return stake.setError('The stake is a whole number of tokens.'), stake.control.focus();
        const prioV = priority.control.value.trim() || '0';
        if (!/^-?\d+$/.test(prioV)) return priority.setError('The priority is a whole number.'), priority.control.focus();
        const body = { title: title.control.value, config, stake: Number(stakeV), priority: Number(prioV) };
        if (description.control.value.trim()) body.description = description.control.value;
        submitBtn.disabled = true;
        submitBtn.textContent = 'Submitting…';
        try {
          const res = await post('/jobs', body, { signal });
          ctx.navigate(`#/jobs/${res.id}`);
        } catch (err) {
          if (err.name === 'AbortError') return;
          if (!placeError(err)) replace(banner, errorBanner(err, { title: 'The job was not submitted' }));
          submitBtn.disabled = false;
          submitBtn.textContent = 'Submit job';
        }
      },
    },
  },
  h('section', { class: 'card', 'aria-labelledby': 'sub-job' }, h('h2', { id: 'sub-job', text: 'The job' }),
    h('div', { class: 'form-grid' }, title.el, description.el)),
  h('section', { class: 'card', 'aria-labelledby': 'sub-train' }, h('h2', { id: 'sub-train', text: 'Training' }),
    h('div', { class: 'stack' }, trainerSet, dsSet)),
  h('section', { class: 'card', 'aria-labelledby': 'sub-stake' }, h('h2', { id: 'sub-stake', text: 'Stake and priority' }),
    h('div', { class: 'form-grid' }, stake.el, priority.el), balanceNote),
  h('section', { class: 'card', 'aria-label': 'Advanced' }, advanced),
  banner,
  h('div', { class: 'form-actions' }, submitBtn, h('a', { href: '#/jobs', class: 'button button-secondary', text: 'Cancel' })));

  main.append(pageHead('Submit a job', 'Describe the training; a node picks it up as soon as one is free.'), form);
  buildTrainerFields();
  buildDatasetFields();
  sync();
  title.control.focus();
  try {
    const { balance } = await get('/balance', null, { signal });
    balanceNote.textContent = `Your balance: ${fmtTokens(balance)}.`;
  } catch (e) {
    if (e.name !== 'AbortError') balanceNote.textContent = '';
  }
  markRendered('submit');
}
