"""A TF1 classifier trained by plain gradient descent with a global-norm clip, as the classic TF1
language-model tutorials train (compute_gradients, clip_by_global_norm, GradientDescentOptimizer).

Its PyTorch port (torch_manual_sgd.py) writes the update by hand, as many early ports did: no
torch.optim, `p.data.add_(p.grad, alpha=-lr)` after clip_grad_norm_.
"""
import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()

N_IN, N_HIDDEN, N_OUT = 20, 32, 5
LR, MAX_GRAD_NORM = 0.5, 5.0


def model(x):
    with tf.variable_scope("hidden"):
        w = tf.get_variable("kernel", [N_IN, N_HIDDEN], initializer=tf.random_uniform_initializer(-0.3, 0.3))
        b = tf.get_variable("bias", [N_HIDDEN], initializer=tf.zeros_initializer())
        h = tf.tanh(tf.matmul(x, w) + b)
    with tf.variable_scope("softmax"):
        w = tf.get_variable("kernel", [N_HIDDEN, N_OUT], initializer=tf.random_uniform_initializer(-0.3, 0.3))
        b = tf.get_variable("bias", [N_OUT], initializer=tf.zeros_initializer())
        return tf.matmul(h, w) + b


def batches(n=100, batch_size=8, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, N_IN)), "y": rng.integers(0, N_OUT, batch_size)}


def parity_program():
    x = tf.placeholder(tf.float32, [None, N_IN])
    y = tf.placeholder(tf.int64, [None])
    logits = model(x)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    tvars = tf.trainable_variables()
    grads, _ = tf.clip_by_global_norm(tf.gradients(loss, tvars), MAX_GRAD_NORM)
    optimizer = tf.train.GradientDescentOptimizer(LR)
    train_op = optimizer.apply_gradients(list(zip(grads, tvars)))
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "optimizer": optimizer,
            "data": lambda: batches()}


if __name__ == "__main__":
    program = parity_program()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, batch in enumerate(batches(20)):
            feed = {program["inputs"][k]: v for k, v in batch.items()}
            cost, _ = sess.run([program["loss"], program["train_op"]], feed)
            print(i, cost)
