FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sfu

FROM debian:bookworm-slim
COPY --from=build /src/target/release/sfu /usr/local/bin/sfu
COPY sfu.sample.toml /etc/sfu/sfu.toml
EXPOSE 7880/tcp 7882/udp 7881/tcp
ENTRYPOINT ["/usr/local/bin/sfu", "--config", "/etc/sfu/sfu.toml"]
