"""chenyu's /bill/list and /recharge/list over the ledger."""

from __future__ import annotations

from tests.support.factories import customer, data_uri, drain, operator, png_bytes, publish_demo
from wfrun.domain.money import parse_amount
from wfrun.services import accounts


async def test_bills_and_recharges(runtime, http):
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice = await customer(runtime, balance="10")
    await accounts.top_up(
        runtime.db, account_id=alice.account_id, amount=parse_amount("2.5"), memo="invoice 42"
    )
    body = {
        "workflow_id": workflow_id,
        "idempotency_key": "b",
        "inputs": {"n1_image": data_uri(png_bytes())},
    }
    run_id = (await http.post("/workflow/run/submit", json=body, headers=alice.headers)).json()[
        "data"
    ]["run_order_id"]
    await drain(runtime)
    info = (
        await http.get("/workflow/run/info", params={"run_order_id": run_id}, headers=alice.headers)
    ).json()["data"]

    bills = (await http.get("/bill/list", headers=alice.headers)).json()["data"]
    assert bills["total"] == 1
    (bill,) = bills["order_list"]
    assert bill["amount_exact"] == info["final_amount"]
    assert bill["amount"] == float(info["final_amount"])
    assert bill["charge_channel"] == 1
    assert bill["run_order_id"] == run_id
    assert bill["settle_end_time"] >= bill["settle_start_time"] >= bill["order_time"] - 1
    by_number = await http.get(
        "/bill/list", params={"order_number": bill["order_number"]}, headers=alice.headers
    )
    assert by_number.json()["data"]["total"] == 1
    cards = await http.get("/bill/list", params={"charge_channel": 2}, headers=alice.headers)
    assert cards.json()["data"] == {"order_list": [], "total": 0}

    response = await http.get("/recharge/list", headers=alice.headers)
    assert response.status_code == 200, response.text
    recharges = response.json()["data"]
    assert recharges["total"] == 2
    assert [(r["amount_exact"], r["remark"]) for r in recharges["order_list"]] == [
        ("2.50000000", "invoice 42"),
        ("10.00000000", ""),
    ]
    bob = await customer(runtime, name="bob", balance="0")
    assert (await http.get("/bill/list", headers=bob.headers)).json()["data"]["total"] == 0
