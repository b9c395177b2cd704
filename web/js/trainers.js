// trainers.js — the built-in trainers every worker runs (MM_TRAINERS in include/modelmine/protocol.h)
// and the config fields each one reads, with the ranges and defaults of the worker's parser
// (worker/train/config.c, documented in worker/train/mmtrain.h). The server checks the trainer's name
// when a job is submitted; the worker checks every field below before training, so the form checks
// them too and a job is not staked on a config the worker would refuse.

export const TRAINERS = [
  {
    name: 'logreg', label: 'Logistic regression',
    about: 'A linear classifier: sigmoid for two classes, softmax for more.',
    dataset: 'classification', fields: ['epochs', 'learning_rate', 'batch_size', 'validation_split', 'l2', 'seed'],
  },
  {
    name: 'mlp', label: 'Multi-layer perceptron',
    about: 'A neural network classifier with hidden layers.',
    dataset: 'classification', fields: ['hidden_layers', 'activation', 'epochs', 'learning_rate', 'batch_size', 'validation_split', 'l2', 'seed'],
  },
  {
    name: 'linreg', label: 'Linear regression',
    about: 'Predicts a numeric target (mean squared error).',
    dataset: 'regression', fields: ['epochs', 'learning_rate', 'batch_size', 'validation_split', 'l2', 'seed'],
  },
  {
    name: 'noop', label: 'No-op',
    about: 'Finishes at once with a trivial result; needs no dataset. For trying the network.',
    dataset: 'none', fields: [],
  },
];

// type int|number|layers|choice; min/max inclusive unless minOpen/maxOpen
export const FIELDS = {
  // optional: left blank, the key is not sent and the worker's default applies (issue 18: L-BFGS to
  // convergence for logreg and linreg, Adam with early stopping for mlp, l2 scaled to the data)
  epochs: { label: 'Epochs', type: 'int', min: 1, max: 10000, optional: true, hint: 'Blank: until training stops improving. Or 1 to 10,000 passes.' },
  learning_rate: { label: 'Learning rate', type: 'number', min: 0, minOpen: true, max: 10, optional: true, step: 'any', hint: 'Blank: 0.001 (Adam; L-BFGS needs none). Or above 0, at most 10.' },
  batch_size: { label: 'Batch size', type: 'int', min: 1, max: 65536, optional: true, hint: 'Blank: 32 (Adam; L-BFGS uses all rows). Or 1 to 65,536 rows per step.' },
  validation_split: { label: 'Validation split', type: 'number', min: 0, minOpen: true, max: 1, maxOpen: true, def: 0.2, step: 'any', hint: 'Share of rows held out, between 0 and 1.' },
  l2: { label: 'L2 weight decay', type: 'number', min: 0, optional: true, step: 'any', hint: 'Blank: 1 / training rows (1e-4 per batch row for mlp). Or 0 or more.' },
  seed: { label: 'Training seed', type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, def: 42, hint: 'Same seed, same result.' },
  hidden_layers: { label: 'Hidden layers', type: 'layers', def: [16], hint: '1 to 8 layer sizes of 1 to 4,096, comma-separated, e.g. 16, 16.' },
  activation: { label: 'Activation', type: 'choice', choices: ['relu', 'tanh'], def: 'relu', hint: 'For the hidden layers.' },
};

export const SYNTHETIC = {
  blobs: { label: 'Blobs', about: 'Gaussian clusters', task: 'classification', keys: ['n', 'classes', 'features', 'noise', 'seed'], classes: 3, noise: 1.0 },
  moons: { label: 'Moons', about: 'Two interleaved half circles', task: 'classification', keys: ['n', 'noise', 'seed'], classes: 2, noise: 0.1 },
  spirals: { label: 'Spirals', about: 'Interleaved spiral arms', task: 'classification', keys: ['n', 'classes', 'noise', 'seed'], classes: 3, noise: 0.1 },
  linear: { label: 'Linear', about: 'A noisy linear function (regression)', task: 'regression', keys: ['n', 'features', 'noise', 'seed'], classes: null, noise: 0.1 },
};

export const DATASET_FIELDS = {
  n: { label: 'Rows', type: 'int', min: 2, max: 1000000, def: 600, hint: '2 to 1,000,000.' },
  classes: { label: 'Classes', type: 'int', min: 2, max: 100, hint: '2 to 100.' },
  features: { label: 'Features', type: 'int', min: 1, max: 1000, def: 2, hint: '1 to 1,000.' },
  noise: { label: 'Noise', type: 'number', min: 0, max: 100, step: 'any', hint: 'Standard deviation, 0 to 100.' },
  seed: { label: 'Data seed', type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, def: 1, hint: 'Which sample is drawn.' },
};

/** Checks one value against a field spec; returns the worker's kind of message, or null. */
export function checkValue(name, spec, raw) {
  const s = String(raw ?? '').trim();
  if (spec.type === 'layers') {
    const parts = s.split(/[\s,]+/).filter(Boolean);
    if (parts.length < 1 || parts.length > 8) return `${name} must list 1 to 8 layer sizes, e.g. 16, 16`;
    for (const [i, p] of parts.entries())
      if (!/^\d+$/.test(p) || +p < 1 || +p > 4096) return `${name}[${i}] must be an integer from 1 to 4096`;
    return null;
  }
  if (spec.type === 'choice') return spec.choices.includes(s) ? null : `${name} must be one of ${spec.choices.join(', ')}`;
  if (s === '') return spec.optional ? null : `${name} is required`;
  const v = Number(s);
  if (!Number.isFinite(v)) return `${name} must be a number`;
  if (spec.type === 'int' && !Number.isInteger(v)) return `${name} must be a whole number`;
  const lo = spec.min;
  const hi = spec.max;
  const range = `${spec.minOpen ? 'above' : 'from'} ${lo}${hi !== undefined && hi < Number.MAX_SAFE_INTEGER ? ` ${spec.maxOpen ? 'and below' : 'to'} ${hi}` : ' or more'}`;
  if (lo !== undefined && (spec.minOpen ? !(v > lo) : !(v >= lo))) return `${name} must be ${range}`;
  if (hi !== undefined && (spec.maxOpen ? !(v < hi) : !(v <= hi))) return `${name} must be ${range}`;
  return null;
}

/** The value as the config holds it. */
export function parseValue(spec, raw) {
  if (spec.type === 'layers') return String(raw).split(/[\s,]+/).filter(Boolean).map(Number);
  if (spec.type === 'choice') return String(raw);
  return Number(raw);
}
