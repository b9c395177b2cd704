/*
 * mmtrain.h — the training library linked into modelmine-worker.
 *
 * The worker claims a job, forks, and the child calls mm_train_run() with the
 * job's config. Everything here is single-threaded and keeps no global state,
 * so it is safe to call from a freshly forked child. Nothing here prints,
 * exits or aborts: every failure comes back as -1 plus a one-line message.
 *
 * Job config (a JSON object). Every listed key is checked for type and
 * range; a JSON null counts as "absent" (the default applies). At submit the
 * extension also refuses keys not listed here and keys that do not apply to
 * the trainer (mm_config_check); a worker ignores them (mm_config_validate),
 * so older workers accept configs written for newer ones.
 *
 *   "trainer"          "logreg" (default): logistic regression; binary
 *                      (one sigmoid output) when the label has 2 classes,
 *                      softmax (multinomial) when it has more.
 *                      "mlp": multi-layer perceptron classifier, same output
 *                      head as logreg.
 *                      "linreg": linear regression on a numeric label.
 *                      "noop": finishes at once with a trivial result and
 *                      needs no dataset (for benchmarks).
 *   "dataset"          required except for noop; one of
 *     {"url": "file:///...|http://...|https://...", "label": "column"}
 *                      http(s) reaches only public addresses unless the
 *                      node allows more (mm_limits.allow_net); file://
 *                      only below mm_limits.file_root.
 *                      CSV with a header row. "label" names the target
 *                      column; every other column is a numeric feature.
 *                      For classification the label values are strings
 *                      (surrounding spaces trimmed), mapped to class
 *                      indices in sorted order: numerically if every value
 *                      is a number, else by byte order. The result's
 *                      "classes" lists them in index order. Missing values
 *                      are not supported. Numbers are read with strtod,
 *                      so the worker must leave LC_NUMERIC as "C".
 *     {"synthetic": "blobs"|"moons"|"spirals"|"linear", ...}
 *                      "n" rows (2..1000000, default 600),
 *                      "classes" (blobs, spirals: 2..100, default 3),
 *                      "features" (blobs, linear: 1..1000, default 2),
 *                      "noise" (0..100; Gaussian noise std added to each
 *                      coordinate / target; default 1.0 for blobs, whose
 *                      centres lie in [-10,10]^features, else 0.1),
 *                      "seed" (integer, default 1: independent of the
 *                      training seed, like a CSV file would be).
 *                      A key that does not apply to the chosen generator
 *                      (e.g. "classes" for moons) is an error, because it
 *                      would silently produce different data than asked.
 *                      blobs, moons, spirals are classification data (for
 *                      logreg, mlp); linear is regression data (for linreg).
 *   "epochs"           1..10000. Absent (the default): a budget of 1000
 *                      epochs that the stopping rules below end first.
 *                      Given: trains exactly that many epochs with adam
 *                      and sgd (no early stopping unless asked for), and
 *                      at most that many iterations with lbfgs.
 *   "optimizer"        "auto" (default): "lbfgs" for logreg and linreg,
 *                      "adam" for mlp. "sgd" is plain mini-batch SGD
 *                      (what every trainer did before issue 18).
 *                      lbfgs: full batch, one iteration per epoch, stops
 *                      when the largest gradient component of the mean
 *                      objective is <= 1e-4 or an iteration lowers it by
 *                      less than 2.2e-9 relative ("converged"). The
 *                      objective is convex, so no step size and no
 *                      validation data are needed to stop.
 *   "learning_rate"    0 < x <= 10; adam and sgd only. Default 0.001
 *                      for adam (Kingma & Ba's, and scikit-learn's),
 *                      0.1 for sgd.
 *   "batch_size"       1..65536, default 32 (adam, sgd)
 *   "early_stopping"   true or false; adam and sgd only. Default: true
 *                      when "epochs" is absent, else false. Stops when
 *                      the validation loss has not improved by 1e-4
 *                      (relative past 1) for "patience" epochs, and
 *                      keeps the weights of the best validation epoch.
 *   "patience"         1..1000, default 10
 *   "seed"             integer, default 42 (split, init and shuffling)
 *   "validation_split" 0 < x < 1, default 0.2 (at least one row each side)
 *   "split"            "auto" (default): "stratified" for classification
 *                      when every class has at least 2 rows, else
 *                      "random". "stratified": each class keeps its share
 *                      of the validation rows (largest remainders, at
 *                      least one row each side), an error when a class
 *                      has fewer than 2 rows or for linreg. "random": a
 *                      plain seeded shuffle.
 *   "hidden_layers"    mlp: array of 1..8 integers, each 1..4096, default [16]
 *   "activation"       mlp: "relu" (default) or "tanh"
 *   "l2"               weight decay on weights (not biases), >= 0: the
 *                      objective is mean loss + l2/2 |W|^2. Default
 *                      1/n_train for logreg and linreg (scikit-learn's
 *                      LogisticRegression C = 1, Ridge alpha = 1), and
 *                      1e-4/min(batch_size, n_train) for mlp
 *                      (MLPClassifier's alpha = 1e-4 per batch).
 *   "replicas"         read by the extension (results that must agree)
 *   (hidden_layers and activation apply to mlp only: submit_job refuses them
 *   for another trainer; a worker validates and ignores them.)
 *
 * Why these defaults (issue 18): logreg and linreg are convex, so the
 * optimum is defined and L-BFGS reaches it in tens of full passes with no
 * step size to tune (what scikit-learn does); a step budget would stop
 * short on small sets and waste passes on large ones. An mlp has no such
 * optimum: Adam's per-parameter step sizes need no tuning per data set, and
 * early stopping on the validation loss with patience, keeping the best
 * weights, both ends training when it stops helping and guards against
 * overfitting, where a fixed budget would have to be guessed per set.
 *
 * Limits beyond the per-field ranges: rows * features <= 50,000,000; a CSV
 * has at most 1001 columns and 1000000 data rows; at most 1000 distinct
 * classes; a model has at most 32,000,000 parameters.
 *
 * Training: features are standardised with the training split's mean and
 * std (std 0 is stored as 1); mini-batches are reshuffled every epoch by a
 * seeded xoshiro256** generator. Loss is cross-entropy for classification
 * and mean squared error for regression (the gradient step uses half the
 * MSE). Same config on the same build gives a bit-identical result. With
 * early stopping, builds that round differently (another compiler flag,
 * fused multiply-adds) can stop an epoch apart; a config with "epochs"
 * and no early stopping runs the same epochs on every build.
 *
 * Result (a new JSON object):
 *   "accuracy"   validation accuracy, null for regression
 *   "loss"       final validation loss; "train_loss" final training loss
 *                (both without the l2 term)
 *   "r2"         validation R^2 (regression only)
 *   "classes"    label names in class-index order (classification only)
 *   "epochs"     epochs (lbfgs iterations) run; "stopped_epoch" the same
 *   "best_epoch" the epoch whose weights the model holds
 *   "stop_reason" "epochs" (the budget ran out), "early_stopping" or
 *                "converged" (lbfgs)
 *   "optimizer"  "lbfgs", "adam" or "sgd"; "l2" the weight decay used
 *   "split"      {"method": "stratified"|"random", "seed",
 *                 "validation_split"}: with the dataset, all it takes to
 *                 rebuild the split
 *   "n_train", "n_val"
 *   "model"      {"type", "output": "sigmoid"|"softmax"|"identity",
 *                 "activation" (mlp), "label", "feature_names", "mean",
 *                 "std", "weights", "biases"}
 *                weights[l][j][i] is the weight from input i to unit j of
 *                layer l, biases[l][j] its bias. A prediction is:
 *                x' = (x - mean) / std; h = act(W h + b) per hidden layer;
 *                then the output layer and the output function.
 */
#ifndef MMTRAIN_H
#define MMTRAIN_H

#include <stddef.h>
#include <jansson.h>

#include "netguard.h"

/*
 * Called once per epoch, with epoch counting 1..epochs (the budget: the
 * config's epochs or the default 1000; training may stop earlier), after
 * the epoch's validation pass. Return non-zero to abort training (job canceled, lease
 * lost); mm_train_run then fails with "aborted by caller ...".
 * val_accuracy is NAN for regression.
 */
typedef int (*mm_progress_fn)(void *ctx, int epoch, int epochs,
                              double train_loss, double val_loss,
                              double val_accuracy);

typedef struct mm_limits
{
	size_t		max_download_bytes;	/* 0 = MM_DEFAULT_MAX_DOWNLOAD */
	long		download_timeout_s;	/* <= 0 = MM_DEFAULT_TIMEOUT_S */
	const char *file_root;			/* file:// only under this dir; NULL = refuse file:// */
	const mm_cidr *allow_net;		/* http(s) may also reach these networks, which */
	size_t		n_allow_net;		/* mm_addr_refusal() refuses otherwise (loopback, private...) */
} mm_limits;

#define MM_DEFAULT_MAX_DOWNLOAD ((size_t) 100 * 1024 * 1024)
#define MM_DEFAULT_TIMEOUT_S 60L

/* Validate a job config without running it: 0 ok, -1 with a one-line message naming the field. */
int			mm_config_validate(const json_t *config, char *err, size_t errlen);

/*
 * The config schema's version: 1 ignored unknown keys everywhere; 2 refuses, at submit, a key that is
 * unknown or does not apply to the trainer.
 */
#define MM_CONFIG_SCHEMA_VERSION 2

/*
 * The check submit_job runs (strict): mm_config_validate's rules, and no key that is unknown or does
 * not apply to the chosen trainer. 0 ok, -1 with a one-line message naming the field.
 */
int			mm_config_check(const json_t *config, char *err, size_t errlen);

/* The schema as JSON (caller owns it): {"version", "keys": {name: {accepts, trainers}}, "dataset_keys"}. */
json_t	   *mm_config_schema(void);

/*
 * Run a training job. On success 0 and *result = new JSON object (caller
 * owns the reference); on failure -1, *result NULL and a one-line message
 * in err. lim may be NULL (defaults, file:// refused, only public addresses
 * over http(s)); cb may be NULL.
 * http(s) uses libcurl: call curl_global_init() once in the worker before
 * forking, or the first fetch in each child initialises it.
 */
int			mm_train_run(const json_t *config, const mm_limits *lim,
						 mm_progress_fn cb, void *ctx, json_t **result,
						 char *err, size_t errlen);

#endif							/* MMTRAIN_H */
