# Producer, reliable consumer, cursor consumer and fanout, with nc.
printf 'set jobs 0 0 5\r\nhello\r\n' | nc -q1 127.0.0.1 22133            # STORED
printf 'set jobs+audit 0 0 5\r\nworld\r\n' | nc -q1 127.0.0.1 22133      # STORED (both queues)
printf 'get jobs.billing\r\n' | nc -q1 127.0.0.1 22133                   # VALUE jobs.billing 0 5 / hello / END
printf 'get jobs/open\r\nget jobs/close\r\n' | nc -q1 127.0.0.1 22133    # VALUE jobs/open 0 5 / hello / END / END
printf 'get jobs\r\nget audit\r\n' | nc -q1 127.0.0.1 22133              # VALUE jobs 0 5 / world / END / VALUE audit …
