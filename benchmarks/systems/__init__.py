"""One driver per job system, all with the same shape, so that the matrix (`benchmarks.matrix`)
compares like with like.

The peers (`celery_peer`, `rq_peer`, `dramatiq_peer`, `procrastinate_peer`) run in their own
virtualenv, workers and client alike, so those modules and `job` and `session` import only
the standard library and the peer's own library; `session` drives one of them from a pipe.
Each peer module has:

* `CONFIGURATIONS`: variant name → what its workers are, in words (for the report);
* `worker_commands(slots, variant)`: the commands that start workers with `slots` slots;
* `prepare()`: what its store needs before the workers start;
* `enqueue_one()` / `enqueue_batch(count)`: one enqueue, or the peer's own batch enqueue,
  giving handles;
* `collect(handles)`: waits for every job's result and gives what `job.run_true` recorded.

`jobyard_system` is jobyard's own driver (it runs in jobyard's virtualenv) and `peer` the
stand-in for a peer session on the bench's side; both give `Burst`s of `measured`.
"""
