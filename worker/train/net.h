/*
 * net.h — a dense feed-forward network, trained one sample at a time.
 *
 * All three trainers are this one network: logreg and linreg have no
 * hidden layer, mlp has 1..8. The output head decides the loss:
 * identity + squared error (regression), sigmoid + binary cross-entropy
 * (two classes, one output unit), softmax + cross-entropy (more classes).
 * Sharing one forward/backward pass keeps a single, tested gradient code
 * path instead of one per model type.
 *
 * Parameters live in one array: for each layer l, W[l] (sizes[l+1] rows of
 * sizes[l] inputs, row-major) then b[l]. Gradients mirror that layout.
 */
#ifndef MM_NET_H
#define MM_NET_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define MM_MAX_HIDDEN 8
#define MM_MAX_WIDTH 4096
#define MM_MAX_PARAMS ((size_t) 32000000)

typedef enum mm_activation
{
	MM_ACT_RELU,
	MM_ACT_TANH
} mm_activation;

typedef enum mm_head
{
	MM_HEAD_IDENTITY,
	MM_HEAD_SIGMOID,
	MM_HEAD_SOFTMAX
} mm_head;

typedef struct mm_net
{
	int			nlayers;		/* weight layers = hidden layers + 1 */
	int			sizes[MM_MAX_HIDDEN + 2];	/* sizes[0] inputs ... sizes[nlayers] outputs */
	size_t		woff[MM_MAX_HIDDEN + 1];
	size_t		boff[MM_MAX_HIDDEN + 1];
	mm_activation act;
	mm_head		head;
	size_t		nparams;
	double	   *params;
	double	   *grads;
	double	   *acts;			/* layer outputs for the current sample */
	size_t		aoff[MM_MAX_HIDDEN + 1];
	double	   *delta;			/* two buffers of the widest layer */
	double	   *delta2;
} mm_net;

/*
 * Build and initialise: hidden layers He-normal for relu, Glorot-normal for
 * tanh; the output layer Glorot-normal; biases zero.
 */
int			mm_net_init(mm_net *net, int inputs, const int *hidden, int nhidden,
						int outputs, mm_activation act, mm_head head,
						uint64_t seed, char *err, size_t errlen);
void		mm_net_free(mm_net *net);

/*
 * Forward one sample (and, if backward, add its gradient to grads). y is
 * the class index or the target. Returns the sample's loss; *pred gets the
 * predicted class index or value.
 */
double		mm_net_sample(mm_net *net, const double *x, double y, int backward,
						  double *pred);
void		mm_net_zero_grad(mm_net *net);
/* params -= lr * (grads / batch + l2 * weights) */
void		mm_net_step(mm_net *net, double lr, double l2, size_t batch);
/*
 * grads = grads / batch + l2 * weights (biases are not decayed): the gradient of the mean loss
 * plus l2/2 |W|^2. Returns l2/2 |W|^2.
 */
double		mm_net_finish_grad(mm_net *net, double l2, size_t batch);
/*
 * One Adam step (beta1 0.9, beta2 0.999, eps 1e-8) with the finished grads; m and v are the
 * moment estimates (nparams each, zero at the start), t counts steps from 1.
 */
void		mm_net_adam(mm_net *net, double *m, double *v, long t, double lr);
int			mm_net_finite(const mm_net *net);

/* {"weights": [[[...]]], "biases": [[...]]} members added to obj; -1 on failure */
int			mm_net_to_json(const mm_net *net, json_t *obj);

#endif							/* MM_NET_H */
