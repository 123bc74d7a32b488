"""Entities: the keys features are looked up by."""

from feast import Entity, ValueType

# A customer of one of our clients. The key includes the client ('acme:AC-000123') so ids from
# different clients can never collide.
customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A client's customer, keyed '<client>:<client customer id>' (stable across drops).",
    tags={"owner": "platform", "dbt_model": "int_customers_deduplicated"},
)
