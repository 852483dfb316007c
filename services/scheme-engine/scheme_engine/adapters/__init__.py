"""PostgreSQL: masters, scheme events, orders, earned benefits, grants, returns and claims."""
