{{ no_transactions() }}
