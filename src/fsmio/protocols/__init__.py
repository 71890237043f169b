"""The protocol layer: gobjs that speak a protocol over GSock/GServerSock/GConnex."""
