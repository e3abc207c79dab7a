module github.com/outpost-appliance/outpost

go 1.26
