-- config: submit_job checks a built-in trainer's config with the workers' own validator (issue 21;
-- worker/train/config.c compiled into the extension by extension/trainconfig.c).  Every rule of the
-- validator is tried here through submit_job with its error text: 22023, the validator's message
-- naming the field, and nothing staked.  At submit the check is strict: a key that is unknown or does
-- not apply to the trainer is refused too (a worker only ignores those).  A runner's config is the
-- runner's to read.  config_schema() publishes the keys; docs/CONFIG.md is checked against it by
-- regress/integration/contract.sh.
\i regress/include/fresh.sql
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
SELECT modelmine.signup('ann@example.com', 'ann password') AS ann;
SELECT modelmine.authenticate(modelmine.login('ann@example.com', 'ann password')) AS ann;
SELECT modelmine.balance() AS balance_before \gset

-- One refusal in full: the validator's line, why nothing happened, where the keys are listed.
SELECT * FROM err($$SELECT modelmine.submit_job('t', '{"trainer": "logreg", "epochs": -3, "dataset": {"synthetic": "blobs"}}')$$);

-- Every rule, each config wrong in one way only (the rest valid).
SELECT label, (err(format('SELECT modelmine.submit_job(%L, %L)', 't', config))).code,
       (err(format('SELECT modelmine.submit_job(%L, %L)', 't', config))).message
  FROM (VALUES
    ('no dataset (logreg by default)', '{}'),
    ('no dataset (mlp)',               '{"trainer": "mlp"}'),
    ('trainer not a string',           '{"trainer": 7, "dataset": {"synthetic": "blobs"}}'),
    ('trainer unknown',                '{"trainer": "xgboost", "dataset": {"synthetic": "blobs"}}'),
    ('epochs negative',                '{"epochs": -3, "dataset": {"synthetic": "blobs"}}'),
    ('epochs 0',                       '{"epochs": 0, "dataset": {"synthetic": "blobs"}}'),
    ('epochs 10001',                   '{"epochs": 10001, "dataset": {"synthetic": "blobs"}}'),
    ('epochs fractional',              '{"epochs": 2.5, "dataset": {"synthetic": "blobs"}}'),
    ('epochs a string',                '{"epochs": "50", "dataset": {"synthetic": "blobs"}}'),
    ('learning_rate 0',                '{"learning_rate": 0, "dataset": {"synthetic": "blobs"}}'),
    ('learning_rate 1e9',              '{"learning_rate": 1e9, "dataset": {"synthetic": "blobs"}}'),
    ('learning_rate a string',         '{"learning_rate": "fast", "dataset": {"synthetic": "blobs"}}'),
    ('batch_size 0',                   '{"batch_size": 0, "dataset": {"synthetic": "blobs"}}'),
    ('batch_size 65537',               '{"batch_size": 65537, "dataset": {"synthetic": "blobs"}}'),
    ('seed fractional',                '{"seed": 1.5, "dataset": {"synthetic": "blobs"}}'),
    ('seed a string',                  '{"seed": "abc", "dataset": {"synthetic": "blobs"}}'),
    ('validation_split 0',             '{"validation_split": 0, "dataset": {"synthetic": "blobs"}}'),
    ('validation_split 1',             '{"validation_split": 1, "dataset": {"synthetic": "blobs"}}'),
    ('l2 negative',                    '{"l2": -0.1, "dataset": {"synthetic": "blobs"}}'),
    ('hidden_layers not an array',     '{"trainer": "mlp", "hidden_layers": 16, "dataset": {"synthetic": "moons"}}'),
    ('hidden_layers empty',            '{"trainer": "mlp", "hidden_layers": [], "dataset": {"synthetic": "moons"}}'),
    ('hidden_layers 9 layers',         '{"trainer": "mlp", "hidden_layers": [1,1,1,1,1,1,1,1,1], "dataset": {"synthetic": "moons"}}'),
    ('hidden_layers[1] 0',             '{"trainer": "mlp", "hidden_layers": [8, 0], "dataset": {"synthetic": "moons"}}'),
    ('hidden_layers[0] 4097',          '{"trainer": "mlp", "hidden_layers": [4097], "dataset": {"synthetic": "moons"}}'),
    ('activation unknown',             '{"trainer": "mlp", "activation": "sigmoid", "dataset": {"synthetic": "moons"}}'),
    ('dataset not an object',          '{"dataset": "iris.csv"}'),
    ('dataset url and synthetic',      '{"dataset": {"url": "https://example.com/a.csv", "label": "y", "synthetic": "blobs"}}'),
    ('dataset neither',                '{"dataset": {"label": "y"}}'),
    ('dataset.url not a string',       '{"dataset": {"url": 5, "label": "y"}}'),
    ('dataset.url empty',              '{"dataset": {"url": "", "label": "y"}}'),
    ('dataset.url with a space',       '{"dataset": {"url": "https://example.com/a b.csv", "label": "y"}}'),
    ('dataset.url scheme',             '{"dataset": {"url": "ftp://example.com/a.csv", "label": "y"}}'),
    ('dataset.url 4097 characters',    '{"dataset": {"url": "https://' || repeat('a', 4089) || '", "label": "y"}}'),
    ('dataset.label missing',          '{"dataset": {"url": "https://example.com/a.csv"}}'),
    ('dataset.label not a string',     '{"dataset": {"url": "https://example.com/a.csv", "label": 3}}'),
    ('dataset.label empty',            '{"dataset": {"url": "https://example.com/a.csv", "label": ""}}'),
    ('dataset.n with a url',           '{"dataset": {"url": "https://example.com/a.csv", "label": "y", "n": 10}}'),
    ('dataset.synthetic unknown',      '{"dataset": {"synthetic": "mnist"}}'),
    ('dataset.label with synthetic',   '{"dataset": {"synthetic": "blobs", "label": "y"}}'),
    ('dataset.n 1',                    '{"dataset": {"synthetic": "blobs", "n": 1}}'),
    ('dataset.n 1000001',              '{"dataset": {"synthetic": "blobs", "n": 1000001}}'),
    ('dataset.classes for moons',      '{"dataset": {"synthetic": "moons", "classes": 3}}'),
    ('dataset.classes 101',            '{"dataset": {"synthetic": "blobs", "classes": 101}}'),
    ('dataset.features for spirals',   '{"dataset": {"synthetic": "spirals", "features": 3}}'),
    ('dataset.features 1001',          '{"dataset": {"synthetic": "blobs", "features": 1001}}'),
    ('dataset.noise 101',              '{"dataset": {"synthetic": "blobs", "noise": 101}}'),
    ('dataset.seed a string',          '{"dataset": {"synthetic": "blobs", "seed": "x"}}'),
    ('dataset rows x features',        '{"dataset": {"synthetic": "blobs", "n": 100000, "features": 1000}}'),
    ('linreg on classification data',  '{"trainer": "linreg", "dataset": {"synthetic": "blobs"}}'),
    ('logreg on regression data',      '{"trainer": "logreg", "dataset": {"synthetic": "linear"}}'),
    ('a number no worker can read',    '{"epochs": 1e400, "dataset": {"synthetic": "blobs"}}'),
    -- strict at submit: unknown keys, near misses suggested, and keys another trainer takes
    ('misspelled key',                 '{"lerning_rate": 0.1, "dataset": {"synthetic": "blobs"}}'),
    ('unknown key',                    '{"momentum": 0.9, "dataset": {"synthetic": "blobs"}}'),
    ('short unknown key',              '{"lr": 0.1, "dataset": {"synthetic": "blobs"}}'),
    ('misspelled dataset key',         '{"dataset": {"synthetic": "blobs", "clases": 3}}'),
    ('hidden_layers for logreg',       '{"trainer": "logreg", "hidden_layers": [8], "dataset": {"synthetic": "blobs"}}'),
    ('activation for linreg',          '{"trainer": "linreg", "activation": "tanh", "dataset": {"synthetic": "linear"}}'),
    ('epochs for noop',                '{"trainer": "noop", "epochs": 3}'),
    ('dataset for noop',               '{"trainer": "noop", "dataset": {"synthetic": "blobs"}}'),
    -- the optimizers (issue 18): L-BFGS, logreg's and linreg's default, takes no step settings
    ('optimizer unknown',              '{"optimizer": "rmsprop", "dataset": {"synthetic": "blobs"}}'),
    ('learning_rate with lbfgs',       '{"learning_rate": 0.1, "dataset": {"synthetic": "blobs"}}'),
    ('batch_size with lbfgs (linreg)', '{"trainer": "linreg", "batch_size": 16, "dataset": {"synthetic": "linear"}}'),
    ('patience with lbfgs, explicit',  '{"optimizer": "lbfgs", "patience": 5, "trainer": "mlp", "dataset": {"synthetic": "moons"}}'),
    ('early_stopping not a boolean',   '{"trainer": "mlp", "early_stopping": "yes", "dataset": {"synthetic": "moons"}}'),
    ('patience 0',                     '{"trainer": "mlp", "patience": 0, "dataset": {"synthetic": "moons"}}'),
    ('split unknown',                  '{"split": "kfold", "dataset": {"synthetic": "blobs"}}'),
    ('split stratified for linreg',    '{"trainer": "linreg", "split": "stratified", "dataset": {"synthetic": "linear"}}')
  ) v(label, config);

-- Nothing was staked or queued by any of them.
SELECT modelmine.balance() = :balance_before AS balance_unchanged,
       (SELECT count(*) FROM modelmine.my_jobs()) AS jobs;

-- Valid configs are accepted: the defaults, every key its trainer takes, JSON null as "absent" (even
-- for a key the trainer does not take), replicas for every trainer, and a runner's config as it is.
SELECT modelmine.submit_job('logreg, defaults', '{"dataset": {"synthetic": "blobs"}}', NULL, 1) > 0 AS ok
UNION ALL
SELECT modelmine.submit_job('logreg, everything', '{"trainer": "logreg", "optimizer": "sgd", "epochs": 200,
    "learning_rate": 0.05, "batch_size": 16, "early_stopping": true, "patience": 5, "split": "stratified",
    "seed": 7, "validation_split": 0.25, "l2": 0.001, "replicas": 1,
    "dataset": {"synthetic": "blobs", "n": 900, "classes": 4, "features": 3, "noise": 2, "seed": 3}}', NULL, 1) > 0
UNION ALL
SELECT modelmine.submit_job('mlp', '{"trainer": "mlp", "hidden_layers": [32, 32], "activation": "tanh",
    "dataset": {"synthetic": "spirals", "classes": 2}}', NULL, 1) > 0
UNION ALL
SELECT modelmine.submit_job('linreg', '{"trainer": "linreg", "dataset": {"synthetic": "linear", "features": 4}}', NULL, 1) > 0
UNION ALL
SELECT modelmine.submit_job('csv', '{"trainer": "logreg", "dataset": {"url": "https://example.com/iris.csv", "label": "species"}}', NULL, 1) > 0
UNION ALL
SELECT modelmine.submit_job('nulls', '{"trainer": "logreg", "epochs": null, "hidden_layers": null,
    "dataset": {"synthetic": "moons", "classes": null}}', NULL, 1) > 0
UNION ALL
SELECT modelmine.submit_job('noop', '{"trainer": "noop", "replicas": 2}', NULL, 1) > 0
UNION ALL
SELECT modelmine.submit_job('runner', '{"runner": "torch-cnn", "lr": 3, "anything": {"goes": true}}', NULL, 1) > 0;
SELECT modelmine.balance() = :balance_before - 8 AS staked_eight;

-- The schema: its version, what each trainer takes, readable by every client role.
SELECT modelmine.config_schema() -> 'version' AS version;
SELECT key, value -> 'trainers' AS trainers
  FROM jsonb_each(modelmine.config_schema() -> 'keys') ORDER BY key;
SELECT string_agg(key, ', ' ORDER BY key) AS dataset_keys
  FROM jsonb_object_keys(modelmine.config_schema() -> 'dataset_keys') key;
SELECT r AS role, has_function_privilege(r, 'modelmine.config_schema()', 'EXECUTE') AS may_read
  FROM unnest(ARRAY['modelmine_anon', 'modelmine_user', 'modelmine_node', 'public']) r;
