"""Two Herald instances on one PostgreSQL database: a change handled by one reaches the other's widget feed
within HERALD_FEED_REFRESH seconds, although only the first saw the event."""
import os
import shutil
import tempfile

import pytest
import requests

from conftest import Herald, postgres_url_or_skip, wait_for


@pytest.fixture
def pair():
    url = postgres_url_or_skip()
    env = {"HERALD_BCRYPT_COST": "10", "HERALD_FEED_REFRESH": "1"}
    first = Herald(database_url=url, env=env).start()
    # Both instances share one set of keys, as the README tells operators to do.
    second_dir = tempfile.mkdtemp(prefix="herald-e2e-")
    for name in os.listdir(first.data_dir):
        if name != "stdout.log":
            path = os.path.join(first.data_dir, name)
            (shutil.copytree if os.path.isdir(path) else shutil.copy2)(path, os.path.join(second_dir, name))
    second = Herald(data_dir=second_dir, database_url=url, env=env).start()
    yield first, second
    second.stop()
    first.stop()



def test_a_pause_on_one_instance_reaches_the_others_feed(pair):
    first, second = pair
    owner = first.signup()
    auth = first.auth(owner["token"])
    org = requests.post(first.url("/organizations"), json={"name": "Pair"}, headers=auth).json()
    site = requests.post(first.url(f"/organizations/{org['id']}/sites"), json={"name": "S", "domain": "pair.example.com"}, headers=auth).json()
    n = requests.post(first.url(f"/sites/{site['id']}/notifications"), json={"name": "Hello", "type": "announcement"}, headers=auth).json()
    assert requests.post(first.url(f"/sites/{site['id']}/notifications/{n['id']}/publish"), headers=auth).status_code == 200

    def shown_by_second():
        r = requests.get(second.url(f"/widget/v1/{site['publicKey']}/feed"))
        return r.status_code == 200 and any(item["id"] == n["id"] for item in r.json()["notifications"])

    # The second instance caches the feed showing the notification...
    assert wait_for(shown_by_second, 10)
    # ...and the pause is handled by the first instance only, yet reaches the second's feed.
    assert requests.post(first.url(f"/sites/{site['id']}/notifications/{n['id']}/pause"), headers=auth).status_code == 200
    assert wait_for(lambda: not shown_by_second(), 5), "the second instance kept serving a paused notification"
