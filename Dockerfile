# droverd image for in-cluster operator mode (config/default).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/droverd ./cmd/droverd

FROM scratch
COPY --from=build /out/droverd /droverd
USER 65532:65532
ENTRYPOINT ["/droverd"]
