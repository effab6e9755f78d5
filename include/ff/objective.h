/* objective.h - the Forward-Forward objective and the normalisation between layers.
 *
 * Goodness of one sample is g = sum_j y_j^2 over the layer's whole activity
 * vector (never averaged over the batch). Loss per sample is the logistic
 * log-likelihood: softplus(theta - g) for positive data, softplus(g - theta)
 * for negative data. Normalisation divides each sample's whole vector (all
 * locations and channels) by sqrt(mean(x^2) + eps), without mean subtraction. */
#ifndef FF_OBJECTIVE_H
#define FF_OBJECTIVE_H

/* numerically stable log(1 + exp(x)) and 1 / (1 + exp(-x)) */
float ff_softplus(float x);
float ff_sigmoid(float x);

/* g[i] = sum_j y[i, j]^2 for a [batch, dim] matrix. */
void ff_goodness(const float *y, int batch, int dim, float *g);

/* FF loss of a batch of ReLU outputs y ([batch, dim]) as positive (sign = +1)
 * or negative (sign = -1) data: returns
 * scale * sum_i softplus(sign * slope * (theta - g_i)) (slope 1 is the paper's
 * logistic), fills g (if not NULL) and dpre = d(returned loss)/d(pre-activation)
 * = scale * dsoftplus * (-2 sign slope y) masked by y > 0 (if dpre not NULL).
 * Use scale = 1/batch for the batch mean. */
float ff_ff_loss(const float *y, int batch, int dim, float theta, float slope, int sign,
                 float scale, float *g, float *dpre);

/* Pairwise FF loss (train.loss: pairwise, "SymBa"): positive row i and negative
 * row i are the same image with the true and a wrong label. Returns
 * scale * sum_i softplus(slope * (gn_i - gp_i)), fills gp, gn (if not NULL) and
 * dpre_pos, dpre_neg = d(returned loss)/d(pre-activation), masked by y > 0 (if
 * not NULL). No threshold: only the gap between the pair's goodness counts. */
float ff_ff_pair_loss(const float *ypos, const float *yneg, int batch, int dim, float slope,
                      float scale, float *gp, float *gn, float *dpre_pos, float *dpre_neg);

/* out[i, :] = x[i, :] / sqrt(mean_j x[i, j]^2 + eps); out may equal x. */
void ff_normalize(const float *x, float *out, int batch, int dim, float eps);

/* Gradient of the normalisation: dx from dout (x is the un-normalised input). */
void ff_normalize_backward(const float *x, const float *dout, float *dx, int batch, int dim,
                           float eps);

#endif
