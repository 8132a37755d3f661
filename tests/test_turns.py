import threading

from clmbot import turns


def test_a_turn_given_back_lets_another_thread_in_and_is_taken_again_after():
    pool = threading.BoundedSemaphore(1)
    other_got_in = threading.Event()

    def other() -> None:
        with turns.taken(pool):
            other_got_in.set()

    with turns.taken(pool):
        thread = threading.Thread(target=other)
        thread.start()
        assert not other_got_in.wait(0.2)  # held: the other waits
        with turns.given_back():
            assert other_got_in.wait(5)  # given back: the other had its turn
            thread.join(5)
        assert not pool.acquire(blocking=False)  # this thread holds it again
    assert pool.acquire(blocking=False)  # and let it go at the end
    pool.release()


def test_giving_back_without_a_turn_does_nothing():
    pool = threading.BoundedSemaphore(1)
    with turns.given_back():  # a background job, the CLI: no turn held
        assert pool.acquire(blocking=False)
    pool.release()
    with turns.taken(pool), turns.given_back(), turns.given_back():  # nested: given back once
        assert pool.acquire(blocking=False)
        pool.release()
