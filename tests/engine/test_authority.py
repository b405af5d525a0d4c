"""Who drives the devices (engine/authority.py): the highest claim wins, ties go to the lower node name on every
node alike, a driver that hears a higher claim stops at once, and a backup claims only after the holder's silence."""

from __future__ import annotations

from engine.authority import Authority, Claim


def test_a_higher_epoch_outranks_and_a_tie_goes_to_the_lower_name_everywhere():
    assert Claim(2, "zulu").outranks(Claim(1, "alpha"))
    assert Claim(3, "alpha").outranks(Claim(3, "bravo"))
    assert not Claim(3, "bravo").outranks(Claim(3, "alpha"))
    assert Claim(1, "x").outranks(None)


def test_nothing_is_claimed_or_sent_before_the_brokers_claim_has_been_read():
    primary = Authority("alpha", "primary", takeover_after=3)
    assert not primary.due(0.0) and not primary.may_send()
    primary.synced(0.0)
    assert primary.due(0.0)  # nobody holds a claim: a primary claims at once
    claim = primary.take_over(0.0, "test")
    assert claim == Claim(1, "alpha") and primary.may_send()
    primary.lost_broker()
    assert primary.driving and not primary.may_send()  # until it knows nobody took over meanwhile


def test_a_backup_waits_for_the_holders_silence_then_claims_the_next_epoch():
    backup = Authority("bravo", "backup", takeover_after=3)
    backup.synced(10.0)
    assert not backup.due(12.0)  # no claim yet: the primary may be starting
    backup.heard(Claim(4, "alpha"), 12.5)
    assert not backup.due(15.0)
    backup.heard(Claim(4, "alpha"), 15.0)  # a heartbeat
    assert not backup.due(17.9) and backup.due(18.1)
    assert backup.take_over(18.1, "silent") == Claim(5, "bravo")


def test_a_driver_that_hears_a_higher_claim_stops_and_ignores_older_ones():
    changes: list[bool] = []
    node = Authority("alpha", "primary")
    node.listeners.append(lambda: changes.append(node.driving))
    node.synced(0.0)
    node.take_over(0.0, "start")
    node.heard(Claim(1, "alpha"), 0.5)  # our own heartbeat
    assert node.driving
    node.heard(Claim(2, "bravo"), 1.0)
    assert not node.driving and node.yielded == 1 and node.holder == Claim(2, "bravo")
    node.heard(Claim(1, "alpha"), 1.2)  # a late heartbeat of our old claim changes nothing
    assert node.holder == Claim(2, "bravo")
    assert changes[-1] is False


def test_a_node_restarted_with_its_own_claim_on_the_broker_claims_anew():
    node = Authority("alpha", "primary")
    node.heard(Claim(7, "alpha"), 0.0)  # the retained lease from before the restart
    node.synced(0.0)
    assert node.due(0.0)
    assert node.take_over(0.0, "restart") == Claim(8, "alpha")


def test_a_tie_between_two_simultaneous_claims_stops_the_higher_name():
    bravo = Authority("bravo", "backup")
    bravo.synced(0.0)
    bravo.take_over(0.0, "silent")  # epoch 1
    bravo.heard(Claim(1, "alpha"), 0.1)  # alpha claimed epoch 1 at the same moment
    assert not bravo.driving
