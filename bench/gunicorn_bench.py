"""gunicorn settings for bench/ack.py and bench/profile_banli.py (passed with `-c`).

wrk opens all its keep-alive connections in one burst, and whichever gthread worker wakes first
accepts most of them: 20 trial starts of 8 connections on 2 workers split 8/0, 7/1, 6/2 or 5/3 in
19 cases and 4/4 once. Each connection then stays on its worker for the whole run, and a worker is
one GIL, so a lopsided split halves a server's throughput at random. The bench caps each worker at
its share of the connections (`--worker-connections ceil(connections / workers)`, set by ack.py):
a full worker stops accepting and the next connection goes to another, like a load balancer that
spreads clients evenly. Same for both servers.

gthread closes every kept-alive connection once `worker_connections - threads` idle ones are
waiting (its `max_keepalived`), which with a cap that small would turn keep-alive off; the hook
lifts that limit (the cap already bounds the connections). gunicorn warns at start-up that no
kept-alive connections can be handled; with this hook that warning does not apply.
"""


def post_worker_init(worker):
    if not hasattr(worker, "max_keepalived"):
        raise RuntimeError("bench/gunicorn_bench.py expects gunicorn's gthread worker (max_keepalived)")
    worker.max_keepalived = 1 << 30
